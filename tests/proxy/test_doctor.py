"""``recorder doctor`` as a real process against TLS and STS stand-ins of AWS, with a real runtime."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from recorder.proxy.doctor import Check, all_passed
from tests.procs import TEST_ARN, RunningProcess, run_recorder, start_runtime
from tests.proxy.aws_standin import (
    CALLER_ARN,
    SECRET_KEY,
    AwsStandIn,
    StsStandIn,
    Tls,
    isolate_aws_env,
    make_tls,
    use_keys,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def runtime() -> Iterator[RunningProcess]:
    with start_runtime("--shell", "sh") as proc:
        yield proc


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def aws(runtime: RunningProcess, tls: Tls) -> Iterator[AwsStandIn]:
    with AwsStandIn(runtime.url, tls) as standin:
        yield standin


@pytest.fixture
def sts() -> Iterator[StsStandIn]:
    with StsStandIn() as standin:
        yield standin


@pytest.fixture(autouse=True)
def aws_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return isolate_aws_env(tmp_path, monkeypatch)


def doctor(aws: AwsStandIn, *extra: str) -> tuple[int, list[str]]:
    result = run_recorder(
        "doctor",
        "--upstream",
        "agentcore",
        "--runtime-arn",
        TEST_ARN,
        "--endpoint-url",
        aws.url,
        "--ca-bundle",
        str(aws.tls.ca_path),
        *extra,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout.strip().splitlines()


def test_all_checks_pass_and_the_test_shell_is_closed(
    aws: AwsStandIn, sts: StsStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_keys(monkeypatch)
    code, lines = doctor(aws, "--region", "us-east-1", "--sts-endpoint-url", sts.url)
    assert code == 0, lines
    assert [line.split(":")[0] for line in lines] == [
        "ok    runtime ARN",
        "ok    credentials",
        "ok    region",
        "ok    shell connection",
    ]
    assert CALLER_ARN in lines[1] and "confirmed and closed" in lines[3]
    assert sts.calls == 1
    (seen,) = aws.received
    assert seen.status == 101 and "shellId=recorder-doctor-" in seen.path
    # The CLOSE frame ended the shell: the runtime closed the connection normally.
    assert aws.ended == [("runtime", 1000)]


def test_wrong_secret_prints_one_line_per_problem(
    aws: AwsStandIn, sts: StsStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_keys(monkeypatch, secret="wrong-" + SECRET_KEY)
    # AWS_ENDPOINT_URL_STS is honoured (botocore's service-specific endpoint variable).
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", sts.url)
    code, lines = doctor(aws, "--region", "us-east-1")
    assert code != 0
    assert len(lines) == 4
    assert lines[0].startswith("ok    runtime ARN") and lines[2].startswith("ok    region")
    assert lines[1].startswith("FAIL  credentials: STS rejected the credentials (SignatureDoesNotMatch")
    assert "AWS_SECRET_ACCESS_KEY" in lines[1]
    assert lines[3].startswith("FAIL  shell connection: AgentCore refused the shell (HTTP 403")
    assert "bedrock-agentcore:InvokeAgentRuntimeCommandShell" in lines[3]
    assert sts.calls == 1 and [r.status for r in aws.received] == [403]


def test_region_mismatch_is_reported_and_no_shell_is_tried(
    aws: AwsStandIn, sts: StsStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_keys(monkeypatch)
    code, lines = doctor(aws, "--region", "eu-west-1", "--sts-endpoint-url", sts.url)
    assert code != 0
    assert lines[2] == (
        "FAIL  region: the proxy signs for eu-west-1 but the runtime is in us-east-1; pass --region us-east-1"
    )
    assert lines[3].startswith("skip  shell connection")
    assert aws.received == []


def test_missing_credentials_fail_the_first_check(aws: AwsStandIn) -> None:
    code, lines = doctor(aws, "--region", "us-east-1")
    assert code != 0
    assert lines[1].startswith("FAIL  credentials: no AWS credentials found")
    assert [line.split()[0] for line in lines[2:]] == ["skip", "skip"]
    assert aws.received == []


def test_a_skipped_check_is_not_a_pass() -> None:
    assert all_passed([Check("a", True, "x"), Check("b", True, "y")])
    assert not all_passed([Check("a", True, "x"), Check("b", None, "skipped")])
    assert Check("b", False, "broken", "fix it").line() == "FAIL  b: broken; fix it"
