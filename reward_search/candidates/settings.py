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
    "dataclasses",
    "enum",
    "unicodedata",
    "abc",
    "heapq",
    "bisect",
    "textwrap",
)


@dataclass(frozen=True)
class PolicyConfig:
    """The static AST policy: a lint that gives reasons, never the boundary (SANDBOX.md)."""

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
    drop_privileges: bool = True  # when started as root: run each worker as its own uid (see distinct_uids)
    uid: int = 65534  # the uid/gid when distinct_uids is off (nobody)
    gid: int = 65534
    # As root: each worker gets a uid/gid of its own, drawn from [uid_base, uid_base + uid_span), so no worker
    # (of this job or another) can signal or ptrace another through permissions.
    distinct_uids: bool = True
    uid_base: int = field(default=200_000, metadata={"min": 1000})
    uid_span: int = field(default=1_000_000, metadata={"min": 1})
    network_namespace: bool = True  # unshare(CLONE_NEWNET) where the platform permits it
    namespaces: bool = True  # PID, mount (empty read-only root) and IPC namespaces where the host permits them
    seccomp: bool = True  # a seccomp-bpf syscall allowlist (pyseccomp over libseccomp) after start-up
    require_seccomp: bool = False  # refuse to run candidates on a host where the seccomp layer cannot be loaded
    # The audit hook and restricted builtins/imports. Only tests switch them off, to show the OS layers hold alone.
    python_guards: bool = True
    score_cap: float = field(default=1e6, metadata={"min": 1e-9})  # |score| above this is refused (rejects)


@dataclass(frozen=True)
class ProbeConfig:
    """Behavioural probes run before a candidate is accepted."""

    problems: int = field(default=8, metadata={"min": 2})  # GSM8K items of the older labelled probes (benchmarks)
    max_ms_per_completion: float = field(default=50.0, metadata={"min": 0.001})  # in probes and every call
    # Decisive pairs (same question and format, a correct and a wrong completion that score differently): rejected
    # as anti-correct when the wrong one scores higher in more than this share of them in any format training
    # produces; a weaker preference is only a warning.
    anti_correct_share: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})
    # The run's secret: probe draws are seeded from it and the candidate's id, so one candidate gets one verdict.
    # None: derived from the bank's fingerprint (`rewards check` on one bank is repeatable).
    seed: int | None = None
    long_completion_chars: int = field(default=20_000, metadata={"min": 1000})
    prompts_per_call: int = field(default=2, metadata={"min": 1})  # bank groups per call (training's prompts_per_step)
    # A format's decisive pairs (scores differ) decide "anti-correct" only from this many on.
    min_decisive: int = field(default=4, metadata={"min": 1})
    min_score_spread: float = 1e-9  # a reward whose scores all lie within this is constant (zero GRPO advantage)


@dataclass(frozen=True)
class BankConfig:
    """The rollout bank the probes draw from (candidates/bank.py reads it, training/bank.py builds it)."""

    # A Parquet bank to use (and to rebuild in place when its fingerprint is not the run's); None: the cache
    # under the user cache dir for a run, and the bank shipped for the embedded model for `rewards check`.
    path: str | None = None
    questions: int = field(default=8, metadata={"min": 1})  # training-pool questions sampled
    samples: int | None = field(default=None, metadata={"min": 2})  # per question; None: generations_per_prompt
    seed: int = 0
    fingerprint: str = ""  # the run's expected fingerprint (set by the driver); a bank with another is refused


@dataclass(frozen=True)
class CandidatesConfig:
    """Everything about turning candidate source into a reward that is safe to run."""

    policy: PolicyConfig = field(default_factory=PolicyConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    probes: ProbeConfig = field(default_factory=ProbeConfig)
    bank: BankConfig = field(default_factory=BankConfig)
    # A training-time reward whose calls fail (timeout, crash, invalid result) this many times ends its trial.
    max_failed_calls: int = field(default=5, metadata={"min": 1})
    # Spot re-probes in training: every `reprobe_every` calls, a few probe completions are re-scored in the same
    # worker; scores that differ from validation stop the candidate as failed. 0 switches them off.
    reprobe_every: int = field(default=25, metadata={"min": 0})
    reprobe_size: int = field(default=4, metadata={"min": 1})
