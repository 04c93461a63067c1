"""Starts a run of a compiled package on Kubeflow Pipelines 2.x through the kfp SDK's `Client`.

kfp 2.13.0 is pinned: kfp 2.14+ needs protobuf 6 while the TFX 1.15 stack needs protobuf 4 (and kfp 1.x protobuf < 4).
A dry run does everything but the network: it parses the package the way the Client does and builds the exact
request body the Client would send.
"""
import datetime
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Dict, Optional

HEALTHZ = '/apis/v2beta1/healthz'


class SubmitError(Exception):
    """Bad input (option, package): the message names it and the fix."""


class SubmitFailed(SubmitError):
    """The server could not be reached or refused the run: the message says what it answered."""


@dataclass
class Submission:
    pipeline: str
    run_name: str
    experiment: str
    tasks: int
    body: Dict  # the JSON body of the create-run request
    run_id: Optional[str] = None  # None for a dry run


def check_host(host: str) -> str:
    parsed = urllib.parse.urlparse(host or '')
    if parsed.scheme not in ('http', 'https') or not parsed.netloc:
        raise SubmitError(f'--host {host!r} is not a URL; pass the Kubeflow Pipelines endpoint like '
                          'http://localhost:8080 (kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80)')
    return host.rstrip('/')


def read_package(package: str):
    """The package parsed by the kfp Client's own reader (PipelineSpec and PlatformSpec, strictly)."""
    from google.protobuf import json_format
    from kfp.client.client import _extract_pipeline_yaml
    try:
        return _extract_pipeline_yaml(package)
    except FileNotFoundError:
        raise SubmitError(f'--package {package}: file not found; compile one with `tfx-tabular kubeflow compile`') \
            from None
    except (ValueError, json_format.ParseError) as e:  # ParseError is a ValueError; kept explicit for the reader
        raise SubmitError(f'--package {package}: not a Kubeflow Pipelines 2 package ({str(e).splitlines()[0]}); '
                          'compile it with `tfx-tabular kubeflow compile`') from None


def prepare(package: str, experiment: Optional[str] = None, run_name: Optional[str] = None,
            pipeline_root: Optional[str] = None, service_account: Optional[str] = None) -> Submission:
    """Validates the package and builds the create-run request without contacting any server."""
    import kfp_server_api
    doc = read_package(package)
    name = doc.pipeline_spec.pipeline_info.name
    run_name = run_name or f'{name} {datetime.datetime.now():%Y-%m-%d %H-%M-%S}'
    if pipeline_root is not None and '://' not in pipeline_root:
        raise SubmitError(f'--pipeline-root {pipeline_root!r}: pass an object-storage URI (gs://, s3://) that '
                          'every component can reach')
    run = kfp_server_api.V2beta1Run(
        display_name=run_name, pipeline_spec=doc.to_dict(), service_account=service_account,
        runtime_config=kfp_server_api.V2beta1RuntimeConfig(pipeline_root=pipeline_root, parameters={}))
    body = kfp_server_api.ApiClient().sanitize_for_serialization(run)
    json.dumps(body)  # what goes on the wire must be plain JSON
    return Submission(pipeline=name, run_name=run_name, experiment=experiment or name,
                      tasks=len(doc.pipeline_spec.root.dag.tasks), body=body)


def _check_reachable(host: str) -> None:
    """Fails fast on a wrong host: kfp's Client retries its health check for half a minute before it gives up."""
    try:
        urllib.request.urlopen(host + HEALTHZ, timeout=10).close()
    except urllib.error.HTTPError:
        pass  # it answered (maybe asking for a login): the Client reports what it says
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, 'reason', e)
        raise SubmitFailed(f'cannot reach Kubeflow Pipelines at {host} ({reason}); check --host, e.g. '
                          'kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80 then --host '
                          'http://localhost:8080') from None


def submit(package: str, host: str, experiment: Optional[str] = None, run_name: Optional[str] = None,
           namespace: Optional[str] = None, pipeline_root: Optional[str] = None,
           service_account: Optional[str] = None) -> Submission:
    """Creates (or reuses) the experiment and starts a run of the package with kfp's Client."""
    submission = prepare(package, experiment, run_name, pipeline_root, service_account)
    host = check_host(host)
    _check_reachable(host)
    import kfp
    import kfp_server_api
    import urllib3
    try:
        client = kfp.Client(host=host, namespace=namespace or 'kubeflow')
        result = client.create_run_from_pipeline_package(
            package, run_name=submission.run_name, experiment_name=submission.experiment, namespace=namespace,
            pipeline_root=pipeline_root, service_account=service_account)
    except kfp_server_api.ApiException as e:
        detail = e.body.decode() if isinstance(e.body, bytes) else e.body
        try:
            detail = json.loads(detail).get('message') or json.loads(detail).get('error') or detail
        except (TypeError, ValueError, AttributeError):
            pass
        raise SubmitFailed(f'Kubeflow Pipelines at {host} refused the run: HTTP {e.status} {e.reason}: '
                          f'{str(detail).strip().splitlines()[0] if detail else "no details"}') from None
    except urllib3.exceptions.HTTPError as e:
        raise SubmitFailed(f'lost Kubeflow Pipelines at {host} ({e}); check --host and retry') from None
    submission.run_id = result.run_id
    return submission
