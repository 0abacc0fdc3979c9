"""The one filter between ``helm template`` and ``podman kube play``: the chart's pods as
podman 4.3 (Debian bookworm's) can run them on one machine, without a cluster.

Kept as rendered: the pods' and containers' security contexts, commands, images, volume
mounts, resources and restart policies. Left as rendered though podman ignores them, and
applied by the tests as the kubelet would: ``terminationGracePeriodSeconds`` (podman stops
after 10 s unless told) and the ``preStop`` hook. Everything else that changes, and why:

- Not played (``NOT_PLAYED``): Service, ServiceAccount, PodDisruptionBudget,
  HorizontalPodAutoscaler, Ingress, NetworkPolicy, ServiceMonitor, which need a cluster.
  A kind the filter does not know is an error: a new object in the chart is a decision.
- Controllers become pods. podman has no Job, and plays a Deployment's replicas as pods all
  alike. The filter makes what the controllers would: a pod per Helm hook Job, in hook weight
  order, then one pod per replica, named after their owner.
- The environment is resolved as the kubelet does: podman lets ``envFrom`` override ``env``
  (Kubernetes does the opposite) and reads a ``secretKeyRef`` from its own secrets, not from
  a Kubernetes Secret. Each container gets plain values: its ``envFrom`` ConfigMaps and
  Secrets, then its ``env``, references read from the rendered objects. ConfigMaps and
  Secrets are consumed so, not played.
- One network for all. The pods share the machine's (``kube play --network host``) to reach
  PostgreSQL, Redis and the sandbox on its loopback, so the replicas cannot all listen on
  the chart's 8080: each gets a port of its own (``FNG_GATEWAY_PORT``) on the loopback
  (``FNG_GATEWAY_HOST``), not on every interface of the machine. The ``ports`` list goes
  (podman publishes a ``containerPort``, which host networking refuses);
  ``PlayedPod.host_port`` maps a port of the chart, by name or number, to the replica's.
- Secret volumes are projected as the kubelet does: podman writes the values still
  base64-encoded, ignores ``items`` and ``defaultMode``, and keeps one volume per Secret name
  for the whole machine. The filter writes each item decoded at its path, behind the
  ``..data`` link the kubelet swaps on an update, with ``defaultMode`` and the pod's
  ``fsGroup`` as group, and mounts that directory as a ``hostPath`` (the ``volumeMounts``,
  read-only, are untouched).
- emptyDir volumes are named after their pod too: podman makes a volume named after the
  emptyDir, which every pod naming one alike would share.
- Probes go: podman turns a liveness probe into a systemd-timer health check (no systemd
  here) running ``curl`` (not in the image) on port 0 (it cannot resolve a named port). The
  tests run the rendered probes themselves, as the kubelet would.
- Annotations go: podman refuses values over 63 characters (a Kubernetes limit on label
  values, not annotations), and the ``checksum/*`` ones are 64. They only roll a Deployment.
"""

from __future__ import annotations

import base64
import copy
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Kinds that need a cluster, and why podman has nothing to do with them.
NOT_PLAYED = {
    "Service": "no cluster network: each replica is reached on its own port",
    "ServiceAccount": "no API server (the pods mount no token)",
    "PodDisruptionBudget": "no voluntary disruptions to budget",
    "HorizontalPodAutoscaler": "no metrics server: the replicas played are the ones wanted",
    "Ingress": "no ingress controller",
    "NetworkPolicy": "no network plugin to enforce it",
    "ServiceMonitor": "no Prometheus operator",
}
#: Kinds whose content reaches the pods through the filter (environment and files).
CONSUMED = {"ConfigMap", "Secret"}
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")
#: The gateway's settings of its listening address (the chart sets them in its ConfigMap).
PORT_VARIABLE, HOST_VARIABLE = "FNG_GATEWAY_PORT", "FNG_GATEWAY_HOST"


@dataclass(frozen=True)
class PlayedPod:
    """One pod podman plays, beside the rendered object it stands for."""

    name: str
    #: The Pod given to ``podman kube play``.
    manifest: dict[str, Any]
    #: The Job or Deployment that would have made it, as rendered.
    owner: dict[str, Any]
    #: Its container's environment, as the kubelet would have resolved it (port included).
    env: dict[str, str]
    #: The machine's port standing for the chart's container port (replicas only).
    port: int | None = None

    @property
    def spec(self) -> dict[str, Any]:
        """The pod spec as rendered."""
        spec: dict[str, Any] = self.owner["spec"]["template"]["spec"]
        return spec

    @property
    def container(self) -> dict[str, Any]:
        """The one container, as rendered."""
        container: dict[str, Any] = self.spec["containers"][0]
        return container

    @property
    def container_name(self) -> str:
        """podman's name for the container: the pod's, then the container's."""
        return f"{self.name}-{self.container['name']}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def volume_names(self) -> list[str]:
        """The podman volumes this pod makes (its emptyDirs)."""
        return [v["name"] for v in self.manifest["spec"]["volumes"] if "emptyDir" in v]

    def host_port(self, port: int | str) -> int:
        """The machine's port for one of the chart's container ports, by name or number."""
        numbers = {p["name"]: p["containerPort"] for p in self.container.get("ports", [])}
        number = numbers.get(str(port), port)
        assert self.port is not None and number in numbers.values(), (self.name, port)
        return self.port


@dataclass(frozen=True)
class Adapted:
    """What podman plays of a rendering, in order, and what it leaves out."""

    #: The Helm hook Jobs' pods, in hook weight order: they run to completion first.
    hooks: list[PlayedPod]
    #: The Deployment's replicas.
    replicas: list[PlayedPod]
    #: "Kind/name" of each object not played.
    not_played: list[str]


def for_podman(
    manifests: Sequence[dict[str, Any]], *, ports: Sequence[int], files: Path
) -> Adapted:
    """The pods of a ``helm template`` rendering, adapted as the module says. ``ports``: one
    free port of the machine per replica; ``files``: where Secret volumes are projected."""
    objects: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in CONSUMED}
    jobs, deployments, not_played = [], [], []
    for manifest in manifests:
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        if kind in CONSUMED:
            objects[kind][name] = manifest
        elif kind == "Job":
            jobs.append(manifest)
        elif kind == "Deployment":
            deployments.append(manifest)
        elif kind in NOT_PLAYED:
            not_played.append(f"{kind}/{name}")
        else:
            raise ValueError(f"the chart renders a {kind}: decide how podman should play it")
    sources = _Sources(objects["ConfigMap"], objects["Secret"])
    hooks = [
        _pod(job, job["metadata"]["name"], sources, files) for job in sorted(jobs, key=_hook_weight)
    ]
    replicas = []
    for deployment in deployments:
        wanted = deployment["spec"]["replicas"]
        assert len(ports) == wanted, f"{wanted} replicas need {wanted} ports, not {len(ports)}"
        for index, port in enumerate(ports):
            name = f"{deployment['metadata']['name']}-{index}"
            replicas.append(_pod(deployment, name, sources, files, port))
    return Adapted(hooks, replicas, sorted(not_played))


def _hook_weight(job: dict[str, Any]) -> int:
    annotations = job["metadata"].get("annotations", {})
    if "pre-install" not in annotations.get("helm.sh/hook", ""):
        raise ValueError(f"the Job {job['metadata']['name']} is not a pre-install hook")
    return int(annotations.get("helm.sh/hook-weight", "0"))


@dataclass(frozen=True)
class _Sources:
    config_maps: Mapping[str, dict[str, Any]]
    secrets: Mapping[str, dict[str, Any]]

    def config_map(self, name: str) -> dict[str, str]:
        return {key: str(value) for key, value in self.config_maps[name]["data"].items()}

    def secret(self, name: str) -> dict[str, bytes]:
        data = self.secrets[name]["data"]
        return {key: base64.b64decode(value) for key, value in data.items()}

    def environment(self, container: dict[str, Any]) -> dict[str, str]:
        """The kubelet's order: envFrom's sources in turn, then env, which wins."""
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                env.update(self.config_map(source["configMapRef"]["name"]))
            else:
                secret = self.secret(source["secretRef"]["name"])
                env.update({key: value.decode() for key, value in secret.items()})
        for variable in container.get("env", []):
            reference = variable.get("valueFrom", {})
            if "secretKeyRef" in reference:
                ref = reference["secretKeyRef"]
                value = self.secret(ref["name"])[ref["key"]].decode()
            elif "configMapKeyRef" in reference:
                ref = reference["configMapKeyRef"]
                value = self.config_map(ref["name"])[ref["key"]]
            elif reference:
                raise ValueError(f"{variable['name']} comes from {reference}: not resolved")
            else:
                value = variable["value"]
            env[variable["name"]] = value
        return env


def _pod(
    owner: dict[str, Any], name: str, sources: _Sources, files: Path, port: int | None = None
) -> PlayedPod:
    template = owner["spec"]["template"]
    spec = copy.deepcopy(template["spec"])
    (container,) = spec["containers"]
    env = sources.environment(container)
    if port is not None:
        (chart_port,) = (p["containerPort"] for p in container["ports"])
        assert env[PORT_VARIABLE] == str(chart_port), "the chart's port is no longer set so"
        env.update({PORT_VARIABLE: str(port), HOST_VARIABLE: "127.0.0.1"})
    container.pop("envFrom", None)
    container["env"] = [{"name": key, "value": value} for key, value in env.items()]
    container.pop("ports", None)
    for probe in PROBES:
        container.pop(probe, None)
    fs_group = spec.get("securityContext", {}).get("fsGroup")
    for volume in spec.get("volumes", []):
        if "secret" in volume:
            directory = files / name / volume["name"]
            _project(volume.pop("secret"), sources, directory, fs_group)
            volume["hostPath"] = {"path": str(directory), "type": "Directory"}
        elif "emptyDir" in volume:
            own = f"{name}-{volume['name']}"
            for mount in container.get("volumeMounts", []):
                if mount["name"] == volume["name"]:
                    mount["name"] = own
            volume["name"] = own
    labels = dict(template["metadata"].get("labels", {}))
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }
    return PlayedPod(name, manifest, owner, env, port)


def _project(
    source: dict[str, Any], sources: _Sources, directory: Path, fs_group: int | None
) -> None:
    """A Secret volume as the kubelet writes it: the files in a directory of their own,
    ``..data`` linking to it, and each path linking through ``..data``."""
    data = sources.secret(source["secretName"])
    items = source.get("items") or [{"key": key, "path": key} for key in data]
    payload = directory / "..payload"
    payload.mkdir(parents=True)
    for item in items:
        target = payload / item["path"]
        target.write_bytes(data[item["key"]])
        target.chmod(item.get("mode", source.get("defaultMode", 0o644)))
        if fs_group is not None:
            os.chown(target, -1, fs_group)
        (directory / item["path"]).symlink_to(Path("..data") / item["path"])
    (directory / "..data").symlink_to(payload.name)
