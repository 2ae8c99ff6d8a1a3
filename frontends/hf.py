"""Hugging Face model zoo: GPT-2, Llama, Qwen2 and Gemma 3 (text) built from configs.

No hub access: every model is built from a config with random weights (fixed seed), or with
weights loaded from a local directory of safetensors files (`weights=DIR`). Models run in
float32, eval mode, eager attention.

Sizes:
- `tiny`: 2 layers, hidden 64 (4 heads, 2 KV heads where the family has GQA), vocab 256.
- `small`: GPT-2-124M shapes: 12 layers, hidden 768, 12 heads, FFN 3072, vocab 50257; the GQA
  families use 4 KV heads. `num_layers=` overrides the depth (the tests use 2 layers to stay
  fast; every per-layer shape is unchanged).
- `paper`: the StreamTensor paper's Table 7 (GPT-2 medium, Qwen2.5-0.5B, TinyLlama-1.1B,
  Gemma-3-1B).

`decode_step(model, past_len)` and `prefill(model, seq_len)` wrap a causal LM into a module with
explicit KV tensors in and out (HF's cache objects do not export), ready for `from_torch`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import transformers
from safetensors import SafetensorError

from frontends.errors import ModelError
from streamdsl.quant import check_float_checkpoint

FAMILIES = ("gpt2", "llama", "qwen2", "gemma")  # the paper's four, with a `paper` size each
# Families no issue names, at `tiny` and `small` only: (config class, extra config fields).
MORE_FAMILIES = {
    "mistral": ("MistralConfig", {}),  # a sliding window on every layer (4096: wider than the tests' contexts)
    "phi3": ("Phi3Config", {}),  # fused qkv and gate/up projections, split
    "qwen3": ("Qwen3Config", {}),  # q/k RMS norms
    "olmo": ("OlmoConfig", {}),  # parameter-free layer norms
    "falcon": ("FalconConfig", {}),  # multi-query attention, parallel attention and MLP
    "gemma2": ("Gemma2Config", {}),  # logit soft-capping, alternating sliding and global layers
}
ALL_FAMILIES = FAMILIES + tuple(MORE_FAMILIES)
SIZES = ("tiny", "small", "paper")
ATTENTIONS = ("eager", "sdpa", "default")

_TINY = dict(layers=2, hidden=64, ffn=128, heads=4, kv_heads=2, vocab=256)
_SMALL = dict(layers=12, hidden=768, ffn=3072, heads=12, kv_heads=4, vocab=50257)
# Table 7 of the paper.
_PAPER = {
    "gpt2": dict(layers=24, hidden=1024, ffn=4096, heads=16, kv_heads=16, vocab=50257),
    "qwen2": dict(layers=24, hidden=896, ffn=4864, heads=14, kv_heads=2, vocab=151936),
    "llama": dict(layers=22, hidden=2048, ffn=5632, heads=32, kv_heads=4, vocab=32000),
    "gemma": dict(layers=26, hidden=1152, ffn=6912, heads=4, kv_heads=1, vocab=262144, head_dim=256),
}


def _shape(family: str, size: str) -> dict:
    if size == "tiny":
        return dict(_TINY)
    if size == "small":
        return dict(_SMALL)
    if size == "paper":
        return dict(_PAPER[family])
    raise ModelError(f"unknown size {size!r}: choose one of {SIZES}")


def _gpt2(s: dict, size: str):
    cfg = transformers.GPT2Config(
        vocab_size=s["vocab"], n_embd=s["hidden"], n_layer=s["layers"], n_head=s["heads"],
        n_inner=s["ffn"], n_positions=1024 if size != "tiny" else 128,
        bos_token_id=s["vocab"] - 1, eos_token_id=s["vocab"] - 1,
    )
    return transformers.GPT2LMHeadModel, cfg


def _llama(s: dict, size: str):
    cfg = transformers.LlamaConfig(
        vocab_size=s["vocab"], hidden_size=s["hidden"], intermediate_size=s["ffn"],
        num_hidden_layers=s["layers"], num_attention_heads=s["heads"],
        num_key_value_heads=s["kv_heads"], max_position_embeddings=2048,
    )
    return transformers.LlamaForCausalLM, cfg


def _qwen2(s: dict, size: str):
    cfg = transformers.Qwen2Config(
        vocab_size=s["vocab"], hidden_size=s["hidden"], intermediate_size=s["ffn"],
        num_hidden_layers=s["layers"], num_attention_heads=s["heads"],
        num_key_value_heads=s["kv_heads"], max_position_embeddings=32768,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
        tie_word_embeddings=size == "paper",
    )
    return transformers.Qwen2ForCausalLM, cfg


def _gemma(s: dict, size: str):
    head_dim = s.get("head_dim", s["hidden"] // s["heads"])
    # Every 6th layer is global (Gemma 3's pattern); the tiny model has one of each kind and a
    # window short enough that the tests' KV lengths cross it.
    layer_types = ["full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(s["layers"])]
    if size == "tiny":
        layer_types = ["sliding_attention", "full_attention"]
    cfg = transformers.Gemma3TextConfig(
        vocab_size=s["vocab"], hidden_size=s["hidden"], intermediate_size=s["ffn"],
        num_hidden_layers=s["layers"], num_attention_heads=s["heads"],
        num_key_value_heads=s["kv_heads"], head_dim=head_dim, query_pre_attn_scalar=head_dim,
        sliding_window={"tiny": 4, "small": 64, "paper": 512}[size], layer_types=layer_types,
        max_position_embeddings=32768,
    )
    return transformers.Gemma3ForCausalLM, cfg


def _more(family: str) -> Callable:
    """A family no issue names, from its transformers config with the zoo's shape; every other
    field keeps transformers' default (special token ids are moved inside the small vocabulary)."""
    config_cls, extra = MORE_FAMILIES[family]

    def build(s: dict, size: str):
        head_dim = s["hidden"] // s["heads"]
        shape = dict(vocab_size=s["vocab"], hidden_size=s["hidden"], num_hidden_layers=s["layers"],
                     num_attention_heads=s["heads"], bos_token_id=s["vocab"] - 1,
                     eos_token_id=s["vocab"] - 1, pad_token_id=None)
        if family == "falcon":  # its names: ffn_hidden_size; KV heads through multi_query (one)
            shape.update(ffn_hidden_size=s["ffn"])
        else:
            shape.update(intermediate_size=s["ffn"], num_key_value_heads=s["kv_heads"], head_dim=head_dim)
        if family == "gemma2":
            shape.update(query_pre_attn_scalar=head_dim, sliding_window={"tiny": 4, "small": 64}[size])
        cfg = getattr(transformers, config_cls)(**shape, **extra)
        return transformers.AutoModelForCausalLM, cfg

    return build


_BUILDERS: dict[str, Callable] = {"gpt2": _gpt2, "llama": _llama, "qwen2": _qwen2, "gemma": _gemma,
                                  **{f: _more(f) for f in MORE_FAMILIES}}


def config(family: str, size: str = "tiny", *, num_layers: int | None = None, attention: str = "eager"):
    """The transformers (model class, config) of a zoo entry. `attention`: "eager" (the zoo's
    default, a stable IR), "sdpa", or "default" (what transformers picks, as a user gets it)."""
    if family not in _BUILDERS:
        raise ModelError(f"unknown model family {family!r}: choose one of {ALL_FAMILIES}")
    if attention not in ATTENTIONS:
        raise ModelError(f"unknown attention {attention!r}: choose one of {ATTENTIONS}")
    if family in MORE_FAMILIES and size == "paper":
        raise ModelError(f"{family} has no `paper` size (the paper's configurations are {', '.join(FAMILIES)}); "
                         "use tiny or small")
    shape = _shape(family, size)
    if num_layers is not None:
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or not 1 <= num_layers <= shape["layers"]:
            raise ModelError(
                f"--layers {num_layers}: {family}-{size} has {shape['layers']} decoder layers; keep between 1 and "
                f"{shape['layers']}"
            )
        shape["layers"] = num_layers
    cls, cfg = _BUILDERS[family](shape, size)
    if family == "gemma" and num_layers is not None:
        cfg.layer_types = cfg.layer_types[:num_layers]
    if attention != "default":
        cfg._attn_implementation = attention
    return cls, cfg


def build(
    family: str,
    size: str = "tiny",
    *,
    num_layers: int | None = None,
    weights: str | Path | None = None,
    seed: int = 0,
    attention: str = "eager",
) -> torch.nn.Module:
    """A float32 causal LM in eval mode: random weights from `seed`, or the safetensors in `weights`."""
    cls, cfg = config(family, size, num_layers=num_layers, attention=attention)
    torch.manual_seed(seed)
    model = (cls.from_config(cfg) if cls is transformers.AutoModelForCausalLM else cls(cfg)).to(torch.float32).eval()
    if weights is not None:
        load_weights(model, weights)
    return model


def load_weights(model: torch.nn.Module, directory: str | Path, option: str = "--weights",
                 allow_unused: bool = False) -> None:
    """Loads every `*.safetensors` file of `directory` into `model` (strict: names must match).
    Pickled checkpoints (`*.bin`, `*.pt`, `*.pth`, `*.ckpt`) are never loaded: unpickling runs code.
    `allow_unused`: tensors the model has no place for are dropped (a model cut to its first layers)."""
    from safetensors.torch import load_file

    if not Path(directory).is_dir():
        raise ModelError(f"{option} {directory}: not a directory; give a directory of *.safetensors files")
    files = sorted(Path(directory).glob("*.safetensors"))
    if not files:
        pickles = sorted(p.name for ext in _PICKLES for p in Path(directory).glob(f"*{ext}"))
        hint = (f"; {', '.join(pickles)} {'is a pickle' if len(pickles) == 1 else 'are pickles'}, which streamdsl never "
                "loads (unpickling runs code): convert with `model.save_pretrained(dir)` (safetensors)" if pickles else "")
        raise ModelError(f"{option} {directory}: no *.safetensors file in it{hint}")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        try:
            state.update(load_file(f))
        except (SafetensorError, OSError, ValueError) as err:
            raise ModelError(f"{f}: not a readable safetensors file ({err}); re-save the checkpoint") from None
    _check_checkpoint(model, state, directory, option)
    missing, unexpected = model.load_state_dict(state, strict=False)
    # A checkpoint stores tied weights (embedding = lm_head) once: the other name is not missing.
    model.tie_weights()
    params = dict(model.named_parameters(remove_duplicate=False))
    loaded = {params[k].data_ptr() for k in state if k in params}
    missing = [k for k in missing if k not in params or params[k].data_ptr() not in loaded]
    if allow_unused:
        unexpected = []
    if missing or unexpected:
        raise ModelError(f"weights in {directory} do not fit the model: missing {_some(missing)}, "
                         f"unexpected {_some(unexpected)}")


def _some(names: list[str], limit: int = 6) -> str:
    names = sorted(names)
    return str(names) if len(names) <= limit else f"{names[:limit]} and {len(names) - limit} more"


_PICKLES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def from_dir(directory: str | Path, *, num_layers: int | None = None, attention: str = "default") -> torch.nn.Module:
    """A local Hugging Face checkpoint (`config.json` + `*.safetensors`, as `save_pretrained`
    writes it) as a float32 causal LM in eval mode, built as `from_pretrained` would but with
    strict weight loading and errors that name the file. `num_layers` keeps the first layers."""
    import json

    directory = Path(directory)
    if not directory.is_dir():
        raise ModelError(f"--model-dir {directory}: not a directory; give a Hugging Face checkpoint directory "
                         "(config.json and *.safetensors, as model.save_pretrained(dir) writes them)")
    path = directory / "config.json"
    if not path.is_file():
        raise ModelError(f"--model-dir {directory}: no config.json in it; a checkpoint directory holds config.json "
                         "and *.safetensors (model.save_pretrained(dir) writes both)")
    try:
        fields = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelError(f"{path}: not valid JSON ({err}); re-save it with model.config.save_pretrained(dir)") from None
    if not isinstance(fields, dict) or "model_type" not in fields:
        raise ModelError(f"{path}: no \"model_type\" field; it is not a transformers config "
                         "(re-save it with model.config.save_pretrained(dir))")
    # a GPTQ/AWQ/bitsandbytes/fp8 checkpoint: say so before transformers tries to load its quantizer
    check_float_checkpoint(str(path), (), fields)
    try:
        cfg = transformers.AutoConfig.from_pretrained(directory, local_files_only=True)
    except (ValueError, KeyError, TypeError, OSError) as err:
        raise ModelError(f"{path}: transformers cannot read it ({err})") from None
    if num_layers is not None:
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or not 1 <= num_layers <= cfg.num_hidden_layers:
            raise ModelError(f"--layers {num_layers}: {directory} has {cfg.num_hidden_layers} decoder layers; keep "
                             f"between 1 and {cfg.num_hidden_layers}")
        _truncate(cfg, num_layers)
    if attention != "default":
        cfg._attn_implementation = attention
    try:
        model = transformers.AutoModelForCausalLM.from_config(cfg)
    except ValueError as err:
        raise ModelError(f"{path}: model_type {fields['model_type']!r} is not a causal language model "
                         f"({str(err).splitlines()[0]})") from None
    model = model.to(torch.float32).eval()
    load_weights(model, directory, "--model-dir", allow_unused=num_layers is not None)
    return model


def _truncate(cfg: transformers.PretrainedConfig, num_layers: int) -> None:
    cfg.num_hidden_layers = num_layers
    if getattr(cfg, "layer_types", None):
        cfg.layer_types = cfg.layer_types[:num_layers]


def _check_checkpoint(model: torch.nn.Module, state: dict[str, torch.Tensor], directory: str | Path,
                      option: str) -> None:
    """Float tensors whose shapes are the model's: an integer checkpoint would be cast silently
    (all-zero logits) and a shape mismatch would end in torch's own error."""
    if bad := sorted(f"{k} ({t.dtype})" for k, t in state.items() if not t.is_floating_point()):
        raise ModelError(
            f"weights in {directory} hold non-float tensors: {', '.join(bad[:4])}{', ...' if len(bad) > 4 else ''}; "
            "the importer runs float32 models: give a float16/bfloat16/float32 checkpoint"
        )
    expected = model.state_dict()
    if wrong := [f"{k} {list(t.shape)} (the model has {list(expected[k].shape)})" for k, t in state.items()
                 if k in expected and t.shape != expected[k].shape]:
        hint = "config.json is not the one these weights were saved with" if option == "--model-dir" else \
            "check --size and --layers against the checkpoint's config"
        raise ModelError(f"weights in {directory} do not fit the model's shapes: {'; '.join(wrong[:4])}; {hint}")


def save_weights(model: torch.nn.Module, directory: str | Path) -> Path:
    """Writes the model's weights as `model.safetensors` in `directory` (shared tensors once)."""
    from safetensors.torch import save_model

    path = Path(directory) / "model.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_model(model, str(path))
    return path


def lively(model: torch.nn.Module, std: float = 0.2, seed: int = 1) -> torch.nn.Module:
    """Redraws the weight matrices wider than the configs' 0.02 init, so that greedy tokens vary
    from step to step instead of repeating one token (the architecture is unchanged)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) * std)
    return model


def kv_shapes(model: torch.nn.Module, length: int) -> list[tuple[int, ...]]:
    """Shape of each layer's key (= value) cache for `length` tokens, read off a one-token run
    (configs disagree on how they name KV heads and head dims)."""
    cache = transformers.DynamicCache()
    with torch.no_grad():
        model(input_ids=torch.zeros(1, 1, dtype=torch.long), cache=cache, use_cache=True)
    return [(*layer.keys.shape[:2], length, *layer.keys.shape[3:]) for layer in cache.layers]


class KVStep(torch.nn.Module):
    """One forward of a causal LM over `seq_len` new tokens after `past_len` cached ones.

    Inputs: `input_ids` (1, seq_len) int64, then (if `past_len`) the past keys and values of every
    layer, each (1, kv_heads, past_len, head_dim). Outputs: logits (1, seq_len, vocab), then
    the new keys and values of every layer (past concatenated with the new tokens'). Positions
    are `past_len .. past_len + seq_len - 1`, fixed at construction, so the importer folds the
    masks and RoPE tables into constants; with `position_input=True` the position ids are a
    runtime input (1, seq_len) after `input_ids` and the RoPE tables are computed in the program.
    """

    def __init__(self, model: torch.nn.Module, past_len: int, seq_len: int, position_input: bool = False):
        super().__init__()
        self.model = model
        self.past_len = past_len
        self.seq_len = seq_len
        self.position_input = position_input
        self.num_layers = model.config.num_hidden_layers
        kv = [f"past_{kind}_{i}" for i in range(self.num_layers) for kind in ("key", "value")] if past_len else []
        self.input_names = ["input_ids"] + (["position_ids"] if position_input else []) + kv

    def forward(self, input_ids: torch.Tensor, *rest: torch.Tensor):
        if self.position_input:
            position_ids, kv = rest[0], rest[1:]
        else:
            position_ids = torch.arange(self.past_len, self.past_len + self.seq_len).unsqueeze(0)
            kv = rest
        cache = transformers.DynamicCache()
        for i in range(self.num_layers if self.past_len else 0):
            cache.update(kv[2 * i], kv[2 * i + 1], i)
        out = self.model(input_ids=input_ids, cache=cache, position_ids=position_ids, use_cache=True)
        new_kv = []
        for layer in cache.layers:
            new_kv += [layer.keys, layer.values]
        return (out.logits, *new_kv)


def _example_inputs(model: torch.nn.Module, past_len: int, seq_len: int, position_input: bool, seed: int):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, model.config.vocab_size, (1, seq_len), generator=gen)
    inputs = [ids]
    if position_input:
        inputs.append(torch.arange(past_len, past_len + seq_len).unsqueeze(0))
    if past_len:
        inputs += [torch.randn(shape, generator=gen) for shape in kv_shapes(model, past_len) for _ in "kv"]
    return tuple(inputs)


def check_steps(cfg: transformers.PretrainedConfig, *, past_len: int | None = None, seq_len: int | None = None) -> None:
    """A decode step after `past_len` cached tokens, or a prefill of `seq_len`, must have at least
    one token and fit the model's positions (checked before any model is built)."""
    if past_len is not None:
        _check_positions(cfg, "--past", past_len, 1, "decode_step needs past_len >= 1; use prefill() for a prompt without a cache")
    if seq_len is not None:
        _check_positions(cfg, "--tokens", seq_len, 0, "prefill needs seq_len >= 1")


def _check_positions(cfg: transformers.PretrainedConfig, option: str, count: int, extra: int, too_few: str) -> None:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ModelError(f"{option} {count}: {too_few}")
    positions = getattr(cfg, "max_position_embeddings", None)  # None: no learned positions (ALiBi, e.g. bloom)
    if positions is not None and count > (limit := positions - extra):
        raise ModelError(f"{option} {count}: the model has {positions} positions; give at most {limit}")


def decode_step(model: torch.nn.Module, past_len: int, *, position_input: bool = False, seed: int = 0):
    """(module, example_inputs) for decoding one token after `past_len` cached tokens."""
    check_steps(model.config, past_len=past_len)
    module = KVStep(model, past_len, 1, position_input)
    return module, _example_inputs(model, past_len, 1, position_input, seed)


def prefill(model: torch.nn.Module, seq_len: int, *, position_input: bool = False, seed: int = 0):
    """(module, example_inputs) for a prompt of `seq_len` tokens with an empty cache."""
    check_steps(model.config, seq_len=seq_len)
    module = KVStep(model, 0, seq_len, position_input)
    return module, _example_inputs(model, 0, seq_len, position_input, seed)
