"""EmbeddingMetadataGen: Embedding Projector metadata for every model the pipeline trains.

Every row of the model's learnt matrices gets a label saying what it stands for: a vocabulary value, an OOV
bucket, a quantile bucket with its boundaries, a numeric input with its scaling, the raw values behind a hash or
cross bucket, a hidden unit with the inputs that drive it, or an eval example with its true and predicted label.

The component and artifact classes load lazily: `tfx-tabular embeddings` imports `locate` from this package and
must not pay for (or print the start-up noise of) TensorFlow.
"""
__all__ = ['EmbeddingMetadata', 'EmbeddingMetadataGen']


def __getattr__(name):
    if name == 'EmbeddingMetadataGen':
        from tfx_tabular.components.embedding_metadata.component import EmbeddingMetadataGen
        return EmbeddingMetadataGen
    if name == 'EmbeddingMetadata':
        from tfx_tabular.components.embedding_metadata.spec import EmbeddingMetadata
        return EmbeddingMetadata
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
