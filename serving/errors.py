"""Errors that carry the gRPC status code TF Serving would answer with, and TF's own errors mapped to them."""
import re

import grpc

# TF's error codes are the canonical gRPC codes (tensorflow/core/protobuf/error_codes.proto).
_CODES = {code.value[0]: code for code in grpc.StatusCode}
# TF op errors wrap the sentence people need in graph locations and stack-trace headers.
_NOISE = re.compile(r'\{\{function_node [^}]*\}\}|\[\[\s*\{\{node [^]]*\]\]|\[Op:[^]]*\]')
_NOISE_LINES = ('Graph execution error', 'Detected at node', '<stack traces unavailable>', 'File "')


class ServingError(Exception):
    """A request the server refuses, with the status code and message sent back to the client."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self):
        return f'{self.code.name}: {self.message}'


def invalid_argument(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def failed_precondition(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.FAILED_PRECONDITION, message)


def not_found(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.NOT_FOUND, message)


def unavailable(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.UNAVAILABLE, message)


def internal(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INTERNAL, message)


def status_code(number: int) -> grpc.StatusCode:
    return _CODES.get(number, grpc.StatusCode.UNKNOWN)


def clean_message(text: str) -> str:
    """A TF error message on one line, without graph locations and stack-trace headers."""
    lines = [line.strip() for line in _NOISE.sub(' ', text).splitlines()]
    return ' '.join(' '.join(line for line in lines if line and not line.startswith(_NOISE_LINES)).split())


def from_tf_error(error) -> ServingError:
    """A tf.errors.OpError as TF Serving reports it: same code, message without graph locations."""
    return ServingError(status_code(error.error_code), clean_message(error.message) or type(error).__name__)


def as_serving_error(error: Exception) -> ServingError:
    """Any exception as a status: ours as they are, TF's with their code, the rest UNKNOWN (as TF Serving's
    Status from an unexpected failure)."""
    if isinstance(error, ServingError):
        return error
    if hasattr(error, 'error_code') and hasattr(error, 'message'):
        return from_tf_error(error)
    return ServingError(grpc.StatusCode.UNKNOWN, f'{type(error).__name__}: {error}'.splitlines()[0])


def from_undecodable_tf_error(error: UnicodeDecodeError) -> ServingError:
    """TF raises UnicodeDecodeError instead of its own error when the message quotes non-UTF-8 input bytes
    (e.g. "Could not parse example input, value: '<bytes>'"); such errors come from bad inputs."""
    raw = error.object if isinstance(error.object, (bytes, bytearray)) else str(error).encode()
    text = bytes(raw).decode('utf-8', 'backslashreplace')
    return invalid_argument(clean_message(text) or str(error))
