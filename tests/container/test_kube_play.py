"""The pods the chart renders, run by ``podman kube play`` from the image the container tests
build: two replicas on the machine's PostgreSQL and Redis, the migrations Job first, master
keys from a mounted file, with the chart's security contexts, volumes, environment, probes
and grace period as rendered. ``kube.py`` is the one filter between the two, and says what it
changes and why.

The tests play the parts of the cluster that podman has not: the Job controller (the
migrations pod runs to completion before the Deployment's pods start) and the kubelet (the
rendered probes, the grace period). They need podman and helm as the other tests of this
folder and of ``tests/helm/`` do, and PostgreSQL and Redis.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
import yaml
from cryptography.fernet import Fernet
from lxml import etree

from gateway import ns
from gateway.cli.quickstart import Registered, register_demo
from gateway.store import create_store
from gateway.store.migrate import HEAD
from gateway.tenancy.secrets import SecretBox
from gateway.tenancy.service import TenancyAdmin
from tests.conftest import Sandbox, own_redis_database
from tests.container.conftest import Podman, free_port
from tests.container.kube import Adapted, PlayedPod, for_podman
from tests.helm.conftest import Chart, helm_chart
from tests.support import Auth, operation, post_journals_body, sample_journal, soap_call

pytestmark = [pytest.mark.container, pytest.mark.helm, pytest.mark.timeout(600)]

REPOSITORY = "localhost/fng-gateway"
GET_BANKS = operation("GetBanks", systemIdentifier="TPPCS")


@pytest.fixture(scope="session")
def chart(tmp_path_factory: pytest.TempPathFactory) -> Chart:
    return helm_chart(tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="session")
def image_tag(podman: Podman, image: str) -> Iterator[str]:
    """The built image under a tag of this session's own, for the chart's ``image.tag``."""
    tag = f"kube-{uuid.uuid4().hex[:12]}"
    podman("tag", image, f"{REPOSITORY}:{tag}")
    yield tag
    podman("untag", image, f"{REPOSITORY}:{tag}", check=False)


@pytest.fixture
async def redis_url() -> str:
    return await own_redis_database(8)


def chart_values(
    tmp_path: Path, tag: str, database_url: str, redis_url: str, key: str, sandbox_url: str
) -> Path:
    """Two replicas on the machine's PostgreSQL and Redis, FNG in the sandbox, the image
    built, master keys in the chart's Secret (mounted as a file: the chart's default)."""
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "replicaCount": 2,
                "image": {"repository": REPOSITORY, "tag": tag},
                "database": {"url": database_url},
                "redis": {"url": redis_url},
                "masterKeys": {"value": key},
                "config": {"fng": {"baseUrl": f"{sandbox_url}/fng"}, "eproc": {"enabled": False}},
            }
        )
    )
    return values


@dataclass
class Played:
    podman: Podman
    adapted: Adapted
    demo: Registered
    master_key: str
    database_url: str

    @property
    def replicas(self) -> list[PlayedPod]:
        return self.adapted.replicas

    @property
    def auth(self) -> Auth:
        return Auth(self.demo.username, self.demo.password, self.demo.database_key)


@pytest.fixture
async def played(
    podman: Podman,
    image_tag: str,
    chart: Chart,
    postgres_url: str,
    redis_url: str,
    sandbox: Sandbox,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> AsyncIterator[Played]:
    """``helm template`` with two replicas, played: the migrations Job's pod to its end, the
    demo school registered (as an operator would), then both replicas until the kubelet
    would call them ready. Every pod is removed afterwards, its logs printed."""
    key = Fernet.generate_key().decode()
    values = chart_values(tmp_path, image_tag, postgres_url, redis_url, key, sandbox.url)
    release = f"fng-gateway-{uuid.uuid4().hex[:8]}"  # pod names of its own on this machine
    manifests = chart.render([values], release=release)
    adapted = for_podman(manifests, ports=[free_port(), free_port()], files=tmp_path / "kubelet")
    try:
        for job in adapted.hooks:
            await play(podman, [job], tmp_path)
            await run_to_completion(podman, job)
        store = create_store(postgres_url)
        box = SecretBox([key.encode()])
        demo = await register_demo(TenancyAdmin(store, box), sandbox.demo, sandbox.url)
        await store.close()
        await play(podman, adapted.replicas, tmp_path)
        await asyncio.gather(*(start(podman, http, pod) for pod in adapted.replicas))
        yield Played(podman, adapted, demo, key, postgres_url)
    finally:
        await asyncio.gather(*(remove(podman, pod) for pod in [*adapted.hooks, *adapted.replicas]))


async def remove(podman: Podman, pod: PlayedPod) -> None:
    """Print the pod's logs (pytest shows them when the test failed), then remove it."""
    logs = await podman.call("logs", pod.container_name, check=False)
    print(f"--- {pod.name} ---\n{logs.stdout[-6000:]}{logs.stderr[-6000:]}")
    await podman.call("pod", "rm", "--force", "--ignore", "--time", "0", pod.name, check=False)
    for volume in pod.volume_names:
        await podman.call("volume", "rm", "--force", volume, check=False)


async def play(podman: Podman, pods: list[PlayedPod], tmp_path: Path) -> None:
    played = tmp_path / f"{pods[0].name}.yaml"
    played.write_text(yaml.safe_dump_all([pod.manifest for pod in pods]))
    await podman.call("kube", "play", "--network", "host", str(played))


async def inspect(podman: Podman, pod: PlayedPod) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((await podman.call("inspect", pod.container_name)).stdout)[0]
    return found


async def run_to_completion(podman: Podman, job: PlayedPod) -> None:
    """The Job controller's part: the pod ends with 0 within activeDeadlineSeconds (a first
    attempt that fails fails the test; backoffLimit is for clusters' bad days)."""
    deadline = job.owner["spec"]["activeDeadlineSeconds"]
    waited = await podman.call("wait", job.container_name, timeout=deadline)
    assert waited.stdout.strip() == "0", (await podman.call("logs", job.container_name)).stderr


async def probe(http: aiohttp.ClientSession, pod: PlayedPod, name: str) -> int:
    """One of the container's probes as rendered, as the kubelet sends it: its status, 0
    when there is no answer in timeoutSeconds."""
    spec = pod.container[name]
    get = spec["httpGet"]
    url = f"{get.get('scheme', 'HTTP').lower()}://127.0.0.1:{pod.host_port(get['port'])}"
    timeout = aiohttp.ClientTimeout(total=spec.get("timeoutSeconds", 1))
    try:
        async with http.get(f"{url}{get['path']}", timeout=timeout) as response:
            return response.status
    except (aiohttp.ClientError, TimeoutError):
        return 0


def succeeded(status: int) -> bool:
    return 200 <= status < 400  # the kubelet's test of an httpGet probe


async def start(podman: Podman, http: aiohttp.ClientSession, pod: PlayedPod) -> None:
    """The kubelet's part as a pod starts: the startup probe until it succeeds, then the
    readiness probe, each within failureThreshold times periodSeconds (asked more often than
    every periodSeconds, to save time); the liveness probe then succeeds too. A container
    that stops or restarts meanwhile fails the test at once."""
    for name in ("startupProbe", "readinessProbe"):
        spec = pod.container[name]
        deadline = time.monotonic() + spec["failureThreshold"] * spec["periodSeconds"]
        while not succeeded(await probe(http, pod, name)):
            state = await inspect(podman, pod)
            assert state["State"]["Running"] and not state["RestartCount"], state["State"]
            assert time.monotonic() < deadline, f"{pod.name}: {name} still failing"
            await asyncio.sleep(0.25)
    assert succeeded(await probe(http, pod, "livenessProbe"))


async def in_pod(podman: Podman, pod: PlayedPod, script: str) -> tuple[str, str]:
    """A shell script run in the pod's container (as ``kubectl exec``): its output and errors."""
    done = await podman.call("exec", pod.container_name, "sh", "-c", script, check=False)
    return done.stdout, done.stderr


async def revision(database_url: str) -> str | None:
    store = create_store(database_url)
    try:
        async with store.read() as conn:
            found = await conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
    finally:
        await store.close()
    return None if found is None else str(found)


async def moment(podman: Podman, pod: PlayedPod, event: str) -> int:
    """When the pod's container started or finished (``StartedAt``, ``FinishedAt``), in ns."""
    field = f"{{{{.State.{event}.UnixNano}}}}"
    return int((await podman.call("inspect", "--format", field, pod.container_name)).stdout)


def without(mapping: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if key not in keys}


class TestFilter:
    def test_the_pods_are_the_rendered_ones(self, chart: Chart, tmp_path: Path) -> None:
        """What podman is given differs from the rendered pods only as ``kube.py`` says: the
        environment resolved, ports and probes gone, Secret volumes projected to a directory
        (decoded, the volume's mode, the pod's fsGroup) and emptyDirs named after their pod."""
        key = Fernet.generate_key().decode()
        database = "postgresql+asyncpg://gw@127.0.0.1:5432/gw"
        values = chart_values(tmp_path, "t", database, "redis://127.0.0.1:6379/0", key, "http://s")
        adapted = for_podman(chart.render([values]), ports=[1001, 1002], files=tmp_path / "k")
        changed = ("env", "envFrom", "ports", "startupProbe", "livenessProbe", "readinessProbe")
        changed += ("volumeMounts",)  # their volumes' names only
        for pod in [*adapted.hooks, *adapted.replicas]:
            played, rendered = pod.manifest["spec"], pod.spec
            pod_level = ("containers", "volumes")
            assert without(played, *pod_level) == without(rendered, *pod_level)
            (container,) = played["containers"]
            original = pod.container
            assert without(container, *changed) == without(original, *changed)
            assert {e["name"]: e["value"] for e in container["env"]} == pod.env
            mounts = [(m["mountPath"], m.get("readOnly")) for m in container["volumeMounts"]]
            assert mounts == [(m["mountPath"], m.get("readOnly")) for m in original["volumeMounts"]]
            for volume, source in zip(played["volumes"], rendered["volumes"], strict=True):
                if "emptyDir" in source:
                    assert volume == {**source, "name": f"{pod.name}-{source['name']}"}
                else:
                    directory = Path(volume["hostPath"]["path"])
                    (item,) = source["secret"]["items"]
                    projected = directory / item["path"]
                    assert projected.read_text() == key
                    assert projected.resolve().parent.parent == directory
                    info = projected.stat()
                    assert info.st_mode & 0o777 == source["secret"]["defaultMode"]
                    assert info.st_gid == rendered["securityContext"]["fsGroup"]
        assert [pod.env["FNG_GATEWAY_PORT"] for pod in adapted.replicas] == ["1001", "1002"]
        assert {pod.env["FNG_GATEWAY_DATABASE_URL"] for pod in adapted.hooks} == {database}


class TestChartPlayed:
    async def test_pods_as_rendered(self, played: Played) -> None:
        """The migrations Job's pod ran ``fng-gateway migrate`` to the end before either
        replica started, and the replicas, which do not migrate themselves, serve the migrated
        database. Every container runs as the chart's user with no capability, no privilege
        escalation and seccomp, on a read-only root: /tmp is writable, the master keys are a
        read-only file and in no environment variable. Only the cluster's objects were left
        out."""
        podman = played.podman
        assert played.adapted.not_played == [
            f"{kind}/{played.replicas[0].owner['metadata']['name']}"
            for kind in ("PodDisruptionBudget", "Service", "ServiceAccount")
        ]
        (migrations,) = played.adapted.hooks
        assert migrations.container["args"] == ["migrate"]
        assert (await inspect(podman, migrations))["State"]["ExitCode"] == 0
        finished = await moment(podman, migrations, "FinishedAt")
        for replica in played.replicas:
            assert finished < await moment(podman, replica, "StartedAt")
            assert replica.env["FNG_GATEWAY_AUTO_MIGRATE"] == "false"
        assert await revision(played.database_url) == HEAD

        for pod in [migrations, *played.replicas]:
            context = pod.container["securityContext"]
            state = await inspect(podman, pod)
            assert state["Config"]["User"] == f"{context['runAsUser']}:{context['runAsGroup']}"
            assert state["HostConfig"]["ReadonlyRootfs"] is context["readOnlyRootFilesystem"]
            assert "no-new-privileges" in state["HostConfig"]["SecurityOpt"]
            mounts = {m["Destination"]: m["RW"] for m in state["Mounts"]}
            wanted = {m["mountPath"]: not m.get("readOnly") for m in pod.container["volumeMounts"]}
            assert mounts == wanted
            assert "FNG_GATEWAY_MASTER_KEYS" not in pod.env

        for replica in played.replicas:
            status, _ = await in_pod(podman, replica, "cat /proc/1/status")
            fields = dict(line.split(":", 1) for line in status.splitlines())
            context = replica.container["securityContext"]
            assert fields["Uid"].split() == [str(context["runAsUser"])] * 4
            assert fields["Gid"].split() == [str(context["runAsGroup"])] * 4
            for capabilities in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
                assert int(fields[capabilities], 16) == 0, capabilities
            assert fields["NoNewPrivs"].strip() == "1"
            assert fields["Seccomp"].strip() == "2"  # a filter: RuntimeDefault
            keys_file = replica.env["FNG_GATEWAY_MASTER_KEYS_FILE"]
            script = (
                "touch /opt/probe && echo root; touch /tmp/probe && echo tmp; "
                f"touch {os.path.dirname(keys_file)}/probe && echo keys; cat {keys_file}"
            )
            written, refused = await in_pod(podman, replica, script)
            assert written.split() == ["tmp", played.master_key]
            assert refused.count("Read-only file system") == 2, refused

    async def test_two_replicas_serve_as_one(
        self, played: Played, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        """Both replicas are ready and serve the WSDL with their own address; a journal posted
        through one is answered through the other as a replay, FNG having had it once; a
        partner key rotated with the CLI in one pod (as with ``kubectl exec``) works through
        both at once."""
        one, other = played.replicas
        for replica in played.replicas:
            async with http.get(f"{replica.url}/soap/ejournal?wsdl") as response:
                assert response.status == 200
                wsdl = etree.fromstring(await response.read())
            assert wsdl.tag == f"{{{ns.WSDL}}}definitions"
            assert f"{replica.url}/soap/ejournal" in wsdl.xpath("//@location")

        body = post_journals_body(sample_journal("K8S-1"))
        first = await soap_call(http, f"{one.url}/soap/ejournal", body, played.auth)
        again = await soap_call(http, f"{other.url}/soap/ejournal", body, played.auth)
        assert first.result().get("isSuccess") == again.result().get("isSuccess") == "true"
        assert (first.result().get("replayed"), again.result().get("replayed")) == (None, "true")
        stats = await sandbox.stats()
        assert (stats["posted_submissions"], stats["requests"]["PostJournals"]) == (1, 1)

        command = f"fng-gateway keys rotate {played.demo.database_id} --json --actor operator"
        output, errors = await in_pod(played.podman, one, command)
        assert output, errors
        next_key = json.loads(output)["next_key"]
        rotated = Auth(played.demo.username, played.demo.password, next_key)
        for replica in played.replicas:
            for auth in (played.auth, rotated):
                answer = await soap_call(http, f"{replica.url}/soap/ejournal", GET_BANKS, auth)
                assert answer.part("isSuccess") == "true", (replica.name, answer.raw)

    async def test_sigterm_with_a_journal_in_flight(
        self, played: Played, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        """SIGTERM through podman to a replica while FNG holds a PostJournals sent through it
        for longer than the drain: /readyz answers 503 at once, the listener stays open for
        the drain, then closes; the call completes after that, a success; the pod exits by
        itself (0, not SIGKILL) within the chart's terminationGracePeriodSeconds less the
        preStop sleep (which Kubernetes would have spent first; podman runs no hook). The
        other replica serves on, and answers the journal as a replay."""
        one, other = played.replicas
        drain = float(one.env["FNG_GATEWAY_SHUTDOWN__DRAIN_SECONDS"])
        grace = one.spec["terminationGracePeriodSeconds"]
        pre_stop = one.container["lifecycle"]["preStop"]["sleep"]["seconds"]
        # FNG answers 4 s after the drain would end if SIGTERM came at once: time enough for
        # podman to deliver it on a busy machine, with the call still in flight at the close.
        held = {"target": "fng", "kind": "latency", "path": "PostJournals", "count": 1}
        await sandbox.faults({**held, "latency_ms": int((drain + 4) * 1000)})
        body = post_journals_body(sample_journal("K8S-2"))
        call = asyncio.create_task(soap_call(http, f"{one.url}/soap/ejournal", body, played.auth))
        answered: list[float] = []
        call.add_done_callback(lambda _: answered.append(time.monotonic()))
        while await sandbox.fault_rules():  # the rule is spent once FNG holds the journal
            assert not call.done(), call.result().raw
            await asyncio.sleep(0.05)

        signalled = time.monotonic()
        readiness = asyncio.create_task(readiness_until_closed(http, one, grace))
        await played.podman.call("pod", "stop", "--time", str(grace - pre_stop), one.name)
        stopped = time.monotonic()
        answer = await call
        timeline = await readiness

        # Ready until SIGTERM reached the gateway, then 503 through the drain, then closed.
        statuses = [status for _, status in timeline]
        assert 503 in statuses, timeline
        draining = statuses.index(503)
        assert set(statuses[:draining]) <= {200}, timeline
        assert set(statuses[draining:-1]) == {503} and statuses[-1] == 0, timeline
        closed = timeline[-1][0]
        assert closed - signalled >= drain, timeline
        assert answer.result().get("isSuccess") == "true", answer.raw
        assert answered[0] > closed  # in flight past the drain: the grace let it finish
        state = await inspect(played.podman, one)
        assert (state["State"]["Running"], state["State"]["ExitCode"]) == (False, 0)
        assert stopped - signalled < grace - pre_stop
        assert succeeded(await probe(http, other, "readinessProbe"))
        again = await soap_call(http, f"{other.url}/soap/ejournal", body, played.auth)
        assert again.result().get("replayed") == "true", again.raw
        assert (await sandbox.stats())["posted_submissions"] == 1


async def readiness_until_closed(
    http: aiohttp.ClientSession, pod: PlayedPod, seconds: float
) -> list[tuple[float, int]]:
    """The readiness probe's answers every 50 ms, until the listener refuses (status 0), for
    ``seconds`` at most."""
    timeline: list[tuple[float, int]] = []
    deadline = time.monotonic() + seconds
    while (not timeline or timeline[-1][1] != 0) and time.monotonic() < deadline:
        timeline.append((time.monotonic(), await probe(http, pod, "readinessProbe")))
        await asyncio.sleep(0.05)
    return timeline
