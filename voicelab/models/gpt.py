"""The semantic prior (stage 2): a GPT-2 that predicts semantic tokens from phonemes.

One training sequence, packed per example with padding only at the end:

    [ph_1 .. ph_P] [BOS] [tok_1 .. tok_T]  -> predicts  tok_1 .. tok_T, EOS
      phoneme emb     |    semantic-token emb
      + language emb  |
      + proj(style)   |

Because every example is packed to the left and the model is causal, the padding after each
example can never be attended to by its real positions, so no attention mask is needed, and
training sees exactly the layout that batch-size-1 generation sees (no position offsets).

Vocabulary: ids 0..codebook_size-1 are the first-quantizer codes of SoVITS, `eos_id =
codebook_size` ends an utterance, and `bos_id = codebook_size + 1` (input side only) separates
the phonemes from the tokens. The head predicts `vocab = codebook_size + 1` classes.

Generation (batch size 1) runs the prefix once and then one position per step with the
transformers KV cache, so a step costs O(length) instead of O(length^2).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import GPT2Config, GPT2Model

from voicelab.config import ModelConfig
from voicelab.data.batch import Batch
from voicelab.errors import VoicelabError
from voicelab.models.sampling import check_sampling_args, sample_next

IGNORE_INDEX = -100
# Token-by-token decoding on a CPU is a long chain of tiny ops: with several intra-op threads the
# synchronisation costs more than the arithmetic (measured on the shared 2-core dev machine:
# 1.1 vs 9.6 ms CPU per token for the tiny preset with 1 vs 2 threads), so the sampling loop
# runs single-threaded and restores the setting afterwards. (synth.cpu_threads sets the
# threads of the whole synthesis call, SoVITS decoder included.)
GEN_CPU_THREADS = 1


@contextmanager
def cpu_threads(device: torch.device, n: int) -> Iterator[None]:
    """Run the block with at most `n` torch CPU threads (no-op off the CPU or for n <= 0)."""
    old = torch.get_num_threads()
    if device.type != "cpu" or n <= 0 or old <= n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@dataclass
class GPTOutput:
    """Result of a teacher-forced pass."""

    logits: Tensor  # [B, T_t + 1, vocab]: position j predicts tok_{j+1}; position T_i predicts EOS
    loss: Tensor  # [] mean token cross-entropy over real targets (EOS included, padding excluded)
    accuracy: Tensor  # [] top-1 accuracy over the same targets (no gradient)
    targets: Tensor  # [B, T_t + 1] long, IGNORE_INDEX where padded


@dataclass
class GenerationResult:
    """Result of `SemanticGPT.generate` for one utterance."""

    tokens: Tensor  # [N] long, generated codes only (no prompt, no EOS)
    hit_cap: bool  # True when max_new_tokens ended generation instead of EOS
    step_logits: Tensor | None = None  # [N (+1 if EOS), vocab] raw logits, when asked for


class SemanticGPT(nn.Module):
    """GPT-2 over [phonemes | BOS | semantic tokens] driven by `inputs_embeds`.

    Args:
        cfg: `cfg.model` (gpt_layers, gpt_hidden, gpt_heads, gpt_max_positions, dropout,
            style_dim, codebook_size).
        n_symbols: size of the phoneme table (voicelab.text.symbols.NUM_SYMBOLS); id 0 is PAD.
        n_langs: number of language ids (voicelab.text.symbols.NUM_LANGS).
        vocab: output classes, codebook_size + 1 (the extra one is EOS).
    """

    def __init__(self, cfg: ModelConfig, n_symbols: int, n_langs: int, vocab: int | None = None):
        super().__init__()
        vocab = cfg.codebook_size + 1 if vocab is None else vocab
        if vocab < 2:
            raise ValueError(f"vocab={vocab}: need at least one code plus EOS")
        self.vocab = vocab
        self.eos_id = vocab - 1
        self.bos_id = vocab  # input-only symbol
        self.max_positions = cfg.gpt_max_positions
        d = cfg.gpt_hidden
        self.config = GPT2Config(
            vocab_size=vocab + 1,  # wte embeds codes + EOS + BOS: it is our token table
            n_positions=cfg.gpt_max_positions,
            n_embd=d,
            n_layer=cfg.gpt_layers,
            n_head=cfg.gpt_heads,
            n_inner=4 * d,
            resid_pdrop=cfg.dropout,
            embd_pdrop=cfg.dropout,
            attn_pdrop=cfg.dropout,
            use_cache=True,
            bos_token_id=self.bos_id,
            eos_token_id=self.eos_id,
        )
        self.transformer = GPT2Model(self.config)
        self.phone_emb = nn.Embedding(n_symbols, d, padding_idx=0)
        self.lang_emb = nn.Embedding(n_langs, d)
        self.style_proj = nn.Linear(cfg.style_dim, d)
        self.head = nn.Linear(d, vocab)
        nn.init.normal_(self.phone_emb.weight, std=0.02)
        nn.init.normal_(self.lang_emb.weight, std=0.02)
        with torch.no_grad():
            self.phone_emb.weight[0].zero_()

    # ---------------------------------------------------------------------------------------
    # embeddings
    # ---------------------------------------------------------------------------------------

    def prefix_embeds(self, phone_ids: Tensor, lang_ids: Tensor, style: Tensor) -> Tensor:
        """phone_ids, lang_ids: [B, T_p] long; style: [B, style_dim] -> [B, T_p, D]."""
        style_term = self.style_proj(style.to(self.style_proj.weight.dtype)).unsqueeze(1)
        return self.phone_emb(phone_ids) + self.lang_emb(lang_ids) + style_term

    def token_embeds(self, tokens: Tensor) -> Tensor:
        """tokens: [B, T] long (codes, EOS or BOS ids) -> [B, T, D]."""
        return self.transformer.wte(tokens)

    def _pack(
        self, prefix: Tensor, phone_lens: Tensor, tokens: Tensor, token_lens: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Lay out [prefix_i | BOS | tokens_i] per example, left-aligned, zero-padded.

        prefix: [B, T_p, D]; tokens: [B, T_t] -> (embeds [B, L, D], first [B]) where L =
        max(P_i + 1 + T_i) and first_i = P_i is the position of BOS (it predicts tok_1).
        """
        b, t_p, _ = prefix.shape
        t_t = tokens.shape[1]
        bos = torch.full((b, 1), self.bos_id, dtype=torch.long, device=tokens.device)
        tok = self.token_embeds(torch.cat([bos, tokens.clamp(0, self.vocab - 1)], 1))  # [B, 1+T_t, D]
        total = phone_lens + 1 + token_lens  # [B]
        length = int(total.max())
        pos = torch.arange(length, device=prefix.device).unsqueeze(0)  # [1, L]
        in_prefix = pos < phone_lens.unsqueeze(1)  # [B, L]
        in_tokens = (~in_prefix) & (pos < total.unsqueeze(1))
        # gather indices (clamped: positions outside a segment are masked out below)
        p_idx = pos.clamp(max=t_p - 1).expand(b, -1)
        t_idx = (pos - phone_lens.unsqueeze(1)).clamp(0, t_t).expand(b, -1)
        d = prefix.shape[-1]
        from_prefix = torch.gather(prefix, 1, p_idx.unsqueeze(-1).expand(-1, -1, d))
        from_tokens = torch.gather(tok, 1, t_idx.unsqueeze(-1).expand(-1, -1, d))
        embeds = torch.where(in_prefix.unsqueeze(-1), from_prefix, 0.0)
        embeds = torch.where(in_tokens.unsqueeze(-1), from_tokens, embeds)
        return embeds, phone_lens

    # ---------------------------------------------------------------------------------------
    # training
    # ---------------------------------------------------------------------------------------

    def forward(self, batch: Batch) -> GPTOutput:
        """Teacher-forced next-token prediction on `batch.tokens` / `batch.token_lens`.

        Uses batch.phone_ids / phone_lens / lang_ids [B, T_p], batch.style [B, style_dim],
        batch.tokens [B, T_t] (0-padded), batch.token_lens [B].
        """
        if batch.tokens is None or batch.token_lens is None or batch.style is None:
            raise ValueError("SemanticGPT.forward needs batch.tokens, batch.token_lens and batch.style")
        phone_lens = batch.phone_lens.long()
        token_lens = batch.token_lens.long()
        needed = int((phone_lens + 1 + token_lens).max())
        if needed > self.max_positions:
            raise VoicelabError(
                f"a training example needs {needed} GPT positions but model.gpt_max_positions="
                f"{self.max_positions}: use shorter slices (slice.max_length_s) or raise "
                "model.gpt_max_positions"
            )
        prefix = self.prefix_embeds(batch.phone_ids, batch.lang_ids, batch.style)
        embeds, first = self._pack(prefix, phone_lens, batch.tokens, token_lens)
        hidden = self.transformer(inputs_embeds=embeds, use_cache=False).last_hidden_state  # [B, L, D]

        b, t_t = batch.tokens.shape
        j = torch.arange(t_t + 1, device=hidden.device).unsqueeze(0)  # [1, T_t+1]
        idx = (first.unsqueeze(1) + j).clamp(max=hidden.shape[1] - 1)  # [B, T_t+1]
        h = torch.gather(hidden, 1, idx.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
        logits = self.head(h)  # [B, T_t+1, vocab]

        targets = torch.cat([batch.tokens.long(), batch.tokens.new_zeros(b, 1)], 1)
        targets = targets.scatter(1, token_lens.unsqueeze(1), self.eos_id)
        targets = targets.masked_fill(j > token_lens.unsqueeze(1), IGNORE_INDEX)
        loss = F.cross_entropy(logits.float().transpose(1, 2), targets, ignore_index=IGNORE_INDEX)
        with torch.no_grad():
            valid = targets != IGNORE_INDEX
            correct = (logits.argmax(-1) == targets) & valid
            accuracy = correct.sum().float() / valid.sum().clamp(min=1)
        return GPTOutput(logits=logits, loss=loss, accuracy=accuracy, targets=targets)

    def freeze_all_but_last(self, n: int) -> int:
        """Fine-tuning: train only the last `n` transformer blocks, the final norm and the head.

        n = 0 trains everything (the meaning of train.gpt_unfreeze_last = 0). Returns the
        number of trainable parameters afterwards.
        """
        layers = len(self.transformer.h)
        if not 0 <= n <= layers:
            raise VoicelabError(
                f"train.gpt_unfreeze_last={n} but the GPT has {layers} blocks: use 0..{layers}"
            )
        for p in self.parameters():
            p.requires_grad_(n == 0)
        if n:
            for block in self.transformer.h[layers - n :]:
                block.requires_grad_(True)
            self.transformer.ln_f.requires_grad_(True)
            self.head.requires_grad_(True)
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    # ---------------------------------------------------------------------------------------
    # inference
    # ---------------------------------------------------------------------------------------

    @staticmethod
    def _as_batch1(x: Tensor | None, dims: int) -> Tensor | None:
        if x is None:
            return None
        return x.unsqueeze(0) if x.dim() == dims - 1 else x

    def _inference_prefix(
        self, phone_ids: Tensor, lang_ids: Tensor, style: Tensor, prompt_tokens: Tensor | None
    ) -> Tensor:
        """[1, T_p + 1 + T_prompt, D]: phonemes, BOS, prompt tokens."""
        prefix = self.prefix_embeds(phone_ids, lang_ids, style)
        bos = torch.full((1, 1), self.bos_id, dtype=torch.long, device=phone_ids.device)
        toks = bos if prompt_tokens is None else torch.cat([bos, prompt_tokens.long()], 1)
        return torch.cat([prefix, self.token_embeds(toks)], 1)

    @torch.no_grad()
    def score(
        self, phone_ids: Tensor, lang_ids: Tensor, style: Tensor, tokens: Tensor
    ) -> Tensor:
        """Uncached logits for one utterance: [T_p] phones, [style_dim], [T] tokens ->
        [T + 1, vocab] (row j predicts the token after tokens[:j]). The reference that the
        KV-cached path of `generate` must match."""
        phone_ids, lang_ids = self._as_batch1(phone_ids, 2), self._as_batch1(lang_ids, 2)
        style, tokens = self._as_batch1(style, 2), self._as_batch1(tokens, 2)
        embeds = self._inference_prefix(phone_ids, lang_ids, style, tokens)
        hidden = self.transformer(inputs_embeds=embeds, use_cache=False).last_hidden_state
        return self.head(hidden[0, phone_ids.shape[1] :]).float()

    def _decode(self, x: Tensor, cache: KVCache) -> Tensor:
        """The GPT-2 blocks run by hand on a preallocated KV cache (inference only, no dropout).

        x: [1, T, D] new input embeddings (T > 1 only for the prefix, when the cache is empty)
        -> [1, T, D] final hidden states. Same math as GPT2Model.forward (pre-LN blocks, learned
        positions, scaled dot-product attention); `score` runs the real GPT2Model and the tests
        check both agree. Why by hand: for a one-token step of a small model GPT2Model's per-call
        overhead (mask construction, cache objects, output wrappers) dominates; measured on one
        CPU thread, 1.91 vs 2.76 ms per step for the small preset (0.61 vs 0.86 for tiny).
        """
        t, start = x.shape[1], cache.length
        if t > 1 and start:
            raise ValueError("only the prefix may be fed several positions at once")
        tr = self.transformer
        pos = torch.arange(start, start + t, device=x.device)
        h = x + tr.wpe(pos).unsqueeze(0)
        n_head, d = self.config.n_head, self.config.n_embd
        for i, block in enumerate(tr.h):
            q, k, v = block.attn.c_attn(block.ln_1(h)).split(d, dim=2)
            q, k, v = (z.view(1, t, n_head, d // n_head).transpose(1, 2) for z in (q, k, v))
            keys, values = cache.append(i, k, v)
            # a single new query may see every cached key; the prefix needs the causal mask
            o = F.scaled_dot_product_attention(q, keys, values, is_causal=t > 1, scale=block.attn.scaling)
            h = h + block.attn.c_proj(o.transpose(1, 2).reshape(1, t, d))
            h = h + block.mlp(block.ln_2(h))
        cache.length += t
        return tr.ln_f(h)

    @torch.no_grad()
    def generate(
        self,
        phone_ids: Tensor,
        lang_ids: Tensor,
        style: Tensor,
        prompt_tokens: Tensor | None = None,
        *,
        top_k: int = 15,
        top_p: float = 1.0,
        temperature: float = 1.0,
        repetition_penalty: float = 1.35,
        max_new_tokens: int = 500,
        min_new_tokens: int = 1,
        generator: torch.Generator | None = None,
        return_logits: bool = False,
    ) -> GenerationResult:
        """Sample semantic tokens for one utterance with the KV cache.

        phone_ids, lang_ids: [T_p] (or [1, T_p]) long, the prompt's phonemes first when a
        prompt is given; style: [style_dim] (or [1, style_dim]); prompt_tokens: [T_pr] codes of
        the reference clip or None. Stops at EOS or after `max_new_tokens` (also capped by
        model.gpt_max_positions); EOS is blocked for the first `min_new_tokens` steps so an
        utterance is never empty. The repetition penalty looks at prompt + generated tokens.
        """
        check_sampling_args(top_k, top_p, temperature, repetition_penalty)
        phone_ids, lang_ids = self._as_batch1(phone_ids, 2), self._as_batch1(lang_ids, 2)
        style, prompt_tokens = self._as_batch1(style, 2), self._as_batch1(prompt_tokens, 2)
        if phone_ids.shape[0] != 1:
            raise ValueError("generate() handles one utterance at a time")
        if prompt_tokens is not None and prompt_tokens.numel() == 0:
            prompt_tokens = None
        embeds = self._inference_prefix(phone_ids, lang_ids, style, prompt_tokens)
        room = self.max_positions - embeds.shape[1]
        if room < 1:
            raise VoicelabError(
                f"the text plus reference needs {embeds.shape[1]} GPT positions, more than "
                f"model.gpt_max_positions={self.max_positions}: use a shorter reference clip "
                "or shorter sentences"
            )
        # the last generated token is never fed back, so `room` positions allow room tokens
        max_new = min(max_new_tokens, room)
        history = prompt_tokens.long() if prompt_tokens is not None else phone_ids.new_zeros(1, 0)
        cache = KVCache(self.config, embeds.shape[1] + max_new, embeds.device, embeds.dtype)
        with cpu_threads(embeds.device, GEN_CPU_THREADS):
            return self._sample_loop(
                embeds, cache, history, max_new, min_new_tokens, generator, return_logits,
                dict(top_k=top_k, top_p=top_p, temperature=temperature,
                     repetition_penalty=repetition_penalty),
            )  # fmt: skip

    def _sample_loop(
        self, embeds: Tensor, cache: KVCache, history: Tensor, max_new: int, min_new_tokens: int,
        generator: torch.Generator | None, return_logits: bool, sampling: dict[str, Any],
    ) -> GenerationResult:
        out = []
        logits_log = []
        hit_cap = True
        x = embeds
        for step in range(max_new):
            hidden = self._decode(x, cache)
            logits = self.head(hidden[:, -1]).float()  # [1, vocab]
            if return_logits:
                logits_log.append(logits[0])
            if step < min_new_tokens:
                logits = logits.clone()
                logits[:, self.eos_id] = float("-inf")
            nxt = sample_next(logits, history=history, generator=generator, **sampling)  # [1]
            if int(nxt) == self.eos_id:
                hit_cap = False
                break
            out.append(nxt)
            history = torch.cat([history, nxt.view(1, 1)], 1)
            x = self.token_embeds(nxt.view(1, 1))
        tokens = torch.cat(out) if out else history.new_zeros(0)  # nothing generated (max_new 0)
        step_logits = torch.stack(logits_log) if return_logits else None
        return GenerationResult(tokens=tokens.long(), hit_cap=hit_cap, step_logits=step_logits)


class KVCache:
    """Keys and values of every layer, preallocated to the longest sequence of one generation.

    keys / values: [n_layer, 1, n_head, max_len, head_dim]; positions [0, length) are filled.
    Writing in place avoids re-allocating (torch.cat) the whole cache at every step.
    """

    def __init__(self, config: GPT2Config, max_len: int, device: torch.device, dtype: torch.dtype):
        hd = config.n_embd // config.n_head
        shape = (config.n_layer, 1, config.n_head, max_len, hd)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0

    def append(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store k, v [1, H, T, hd] after the filled part; return all keys/values so far."""
        end = self.length + k.shape[2]
        self.keys[layer, :, :, self.length : end] = k
        self.values[layer, :, :, self.length : end] = v
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
