"""Changed settings roll the pods; a new master key in a mounted file does not need to."""

from __future__ import annotations

import pytest

from tests.helm.conftest import MASTER_KEY, POSTGRES, Chart, only

pytestmark = pytest.mark.helm

OTHER_KEY = "Jm2V7i0z3VwYg8pTqgGQ1pVdQ3cJv7W7S1QmJm2V7i0="


def _annotations(chart: Chart, *sets: str) -> dict[str, str]:
    deployment = only(chart.render(sets=sets), "Deployment")
    annotations: dict[str, str] = deployment["spec"]["template"]["metadata"]["annotations"]
    return annotations


class TestChecksums:
    @pytest.mark.parametrize(
        "change",
        [
            "config.logLevel=DEBUG",
            "config.fng.baseUrl=https://fng.example.org/fng",
            "config.admin.enabled=true",
            "config.extraEnv.FNG_GATEWAY_XML__MAX_DEPTH=32",
            "shutdown.graceSeconds=40",
        ],
    )
    def test_a_setting_changes_checksum_config(self, chart: Chart, change: str) -> None:
        """Any change to the ConfigMap changes the pod template, so the Deployment rolls."""
        before = _annotations(chart)["checksum/config"]
        assert _annotations(chart, change)["checksum/config"] != before

    def test_unrelated_values_leave_it_alone(self, chart: Chart) -> None:
        """Scaling or labelling pods is not a settings change."""
        before = _annotations(chart)
        after = _annotations(chart, "podLabels.team=finance", "resources.limits.memory=2Gi")
        assert after["checksum/config"] == before["checksum/config"]
        assert after["checksum/secret"] == before["checksum/secret"]

    def test_the_database_url_changes_checksum_secret(self, chart: Chart) -> None:
        before = _annotations(chart, f"database.url={POSTGRES}")
        after = _annotations(chart, f"database.url={POSTGRES}2")
        assert after["checksum/secret"] != before["checksum/secret"]

    def test_a_mounted_master_key_is_picked_up_without_a_roll(self, chart: Chart) -> None:
        """Master keys mounted as a file reach running pods through Kubernetes' update of the
        mount; the pod template stays the same."""
        before = _annotations(chart, f"masterKeys.value={MASTER_KEY}")
        after = _annotations(chart, f"masterKeys.value={OTHER_KEY}\\,{MASTER_KEY}")
        assert after == before

    def test_master_keys_in_the_environment_roll_the_pods(self, chart: Chart) -> None:
        env = "masterKeys.mountAsFile=false"
        before = _annotations(chart, env, f"masterKeys.value={MASTER_KEY}")
        after = _annotations(chart, env, f"masterKeys.value={OTHER_KEY}\\,{MASTER_KEY}")
        assert after["checksum/secret"] != before["checksum/secret"]
