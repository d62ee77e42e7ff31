"""Settings for candidate rewards: static policy, sandbox limits, probes and training-time failure handling.

Frozen dataclasses in the experiment-config style (defaults are the single source of defaults; ``min`` metadata
marks positive numbers), so they can be embedded as a ``candidates`` section of the experiment config.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_IMPORTS: tuple[str, ...] = (
    "re",
    "math",
    "statistics",
    "json",
    "itertools",
    "functools",
    "operator",
    "string",
    "collections",
    "typing",
    "fractions",
    "decimal",
)


@dataclass(frozen=True)
class PolicyConfig:
    """The static AST policy: the first filter, never the only one."""

    # Top-level modules a candidate may import (submodules such as collections.abc follow their parent).
    # `random` is off by default: rewards must be deterministic.
    allowed_imports: tuple[str, ...] = DEFAULT_IMPORTS
    max_source_bytes: int = field(default=50_000, metadata={"min": 1})

    def validate(self) -> list[tuple[str, str]]:
        problems = []
        for name in self.allowed_imports:
            if not name.replace("_", "a").replace(".", "a").isalnum() or name.startswith("_"):
                problems.append(("allowed_imports", f"{name!r} is not a public module name"))
        return problems


@dataclass(frozen=True)
class SandboxConfig:
    """Process isolation and limits for the worker that runs one candidate."""

    backend: str = "process"  # a key of sandbox.BACKENDS
    cpu_seconds: int = field(default=120, metadata={"min": 1})  # RLIMIT_CPU over a worker's life; recycled at half
    memory_mb: int = field(default=1024, metadata={"min": 64})  # RLIMIT_AS
    max_open_files: int = field(default=32, metadata={"min": 8})  # RLIMIT_NOFILE
    call_timeout_s: float = field(default=5.0, metadata={"min": 0.01})  # wall clock per call, enforced by killing
    load_timeout_s: float = field(default=5.0, metadata={"min": 0.01})  # start + load the candidate's module
    max_reply_bytes: int = field(default=4_000_000, metadata={"min": 1024})
    drop_privileges: bool = True  # when started as root: run the worker as `uid`/`gid` (nobody)
    uid: int = 65534
    gid: int = 65534
    network_namespace: bool = True  # unshare(CLONE_NEWNET) where the platform permits it


@dataclass(frozen=True)
class ProbeConfig:
    """Behavioural probes run before a candidate is accepted."""

    problems: int = field(default=8, metadata={"min": 2})  # GSM8K items the labelled completions are built from
    max_ms_per_completion: float = field(default=50.0, metadata={"min": 0.001})
    long_completion_chars: int = field(default=20_000, metadata={"min": 1000})
    min_score_spread: float = 1e-9  # a reward whose scores all lie within this is constant (zero GRPO advantage)


@dataclass(frozen=True)
class CandidatesConfig:
    """Everything about turning candidate source into a reward that is safe to run."""

    policy: PolicyConfig = field(default_factory=PolicyConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    probes: ProbeConfig = field(default_factory=ProbeConfig)
    # A training-time reward whose calls fail (timeout, crash, invalid result) this many times ends its trial.
    max_failed_calls: int = field(default=5, metadata={"min": 1})
