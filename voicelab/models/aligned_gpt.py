"""The world path's semantic prior: a GPT-2 that predicts exactly one prosody token per phone.

GPT-SoVITS's GPT has to discover which phoneme each token belongs to through attention, which
takes ~10k steps at batch 64 on a GPU when it works at all, and when it fails it skips or repeats
words (the failure its users report most). Here the alignment is known, so it is given:

    [ph_1 .. ph_P] [BOS + ph_1'] [tok_1 + ph_2'] .. [tok_{P-1} + ph_P']  -> predicts tok_1 .. tok_P
      phoneme emb   |   token embedding + the embedding of the phone being described (ph')
      + word pos    |
      + proj(style) |

The input at token position j carries the phone whose token it predicts, so the model never
has to find its place, and it emits exactly P tokens: a phone can be neither skipped nor
repeated, whatever the logits say (there is no EOS to predict). Attention is left with the
useful work: context (neighbouring phones, earlier prosody, speaking rate).

A prompt (the reference clip's phones and tokens) is the same layout with the first tokens
given: phones = prompt phones + target phones, and the first len(prompt) tokens are forced.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from voicelab.config import ModelConfig
from voicelab.data.batch import Batch
from voicelab.errors import VoicelabError
from voicelab.models.gpt import (
    GEN_CPU_THREADS,
    IGNORE_INDEX,
    GenerationResult,
    GPTOutput,
    KVCache,
    SemanticGPT,
    cpu_threads,
)
from voicelab.models.sampling import check_sampling_args, sample_next


class AlignedGPT(SemanticGPT):
    """One token per phone over a codebook of `cfg.codebook_size` prosody codes.

    Args:
        cfg: `cfg.model` (gpt_*, dropout, style_dim, codebook_size).
        n_symbols: ARPAbet table size (id 0 = PAD); n_word_pos, n_stress: the sizes of the
            word-position and stress tables.
    The vocabulary keeps SemanticGPT's layout (codes, EOS, BOS) so the KV-cached decoder and
    the checkpoint format are shared; EOS is never a target and never sampled.
    """

    def __init__(self, cfg: ModelConfig, n_symbols: int, n_word_pos: int, n_stress: int):
        super().__init__(cfg, n_symbols, n_langs=n_word_pos, vocab=cfg.codebook_size + 1)
        self.stress_emb = nn.Embedding(n_stress, self.config.n_embd)
        nn.init.normal_(self.stress_emb.weight, std=0.02)
        # the phone a token position describes: its own table, separate from the prefix's
        self.cur_phone_emb = nn.Embedding(n_symbols, self.config.n_embd, padding_idx=0)
        nn.init.normal_(self.cur_phone_emb.weight, std=0.02)

    # `lang_emb` of SemanticGPT embeds the word position here (the prefix's second id stream)

    def _prefix(self, phone_ids: Tensor, word_pos: Tensor, stress: Tensor, style: Tensor) -> Tensor:
        """[B, P, D]: phone + word position + stress + style."""
        return self.prefix_embeds(phone_ids, word_pos, style) + self.stress_emb(stress)

    def _stream_embeds(self, tokens_in: Tensor, phone_ids: Tensor) -> Tensor:
        """tokens_in [B, P] (BOS, tok_1 .. tok_{P-1}); phone_ids [B, P] -> [B, P, D]."""
        return self.token_embeds(tokens_in) + self.cur_phone_emb(phone_ids)

    def forward(self, batch: Batch) -> GPTOutput:
        """Teacher forcing. Uses batch.phone_ids / word_pos / phone_lens [B, P], batch.style
        [B, style_dim], batch.tokens [B, P] (one code per phone, 0 padded)."""
        if batch.tokens is None or batch.style is None or batch.word_pos is None:
            raise ValueError("AlignedGPT.forward needs batch.tokens, batch.style, batch.word_pos")
        b, p = batch.phone_ids.shape
        lens = batch.phone_lens.long()
        if 2 * p > self.max_positions:
            raise VoicelabError(
                f"a training example has {p} phones, which needs {2 * p} GPT positions but "
                f"model.gpt_max_positions={self.max_positions}: use shorter slices "
                "(slice.max_length_s) or raise model.gpt_max_positions"
            )
        prefix = self._prefix(batch.phone_ids, batch.word_pos, batch.stress, batch.style)  # [B, P, D]
        bos = torch.full((b, 1), self.bos_id, dtype=torch.long, device=prefix.device)
        tokens = batch.tokens.long().clamp(0, self.eos_id - 1)
        tokens_in = torch.cat([bos, tokens[:, :-1]], 1)  # [B, P]
        stream = self._stream_embeds(tokens_in, batch.phone_ids)
        embeds, pos = self._pack_aligned(prefix, stream, lens)
        hidden = self.transformer(inputs_embeds=embeds, use_cache=False).last_hidden_state
        idx = pos.unsqueeze(-1).expand(-1, -1, hidden.shape[-1])
        logits = self.head(torch.gather(hidden, 1, idx))  # [B, P, vocab]
        j = torch.arange(p, device=tokens.device)[None]
        targets = tokens.masked_fill(j >= lens[:, None], IGNORE_INDEX)
        logits = logits.float()
        logits[..., self.eos_id] = float("-inf")  # never a target: keep it out of the softmax
        loss = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=IGNORE_INDEX)
        with torch.no_grad():
            valid = targets != IGNORE_INDEX
            correct = (logits.argmax(-1) == targets) & valid
            accuracy = correct.sum().float() / valid.sum().clamp(min=1)
        return GPTOutput(logits=logits, loss=loss, accuracy=accuracy, targets=targets)

    @staticmethod
    def _pack_aligned(prefix: Tensor, stream: Tensor, lens: Tensor) -> tuple[Tensor, Tensor]:
        """Left-aligned [prefix_i (P_i) | stream_i (P_i)] per example, zero padded at the end
        (causal model: padding after an example is never attended to by its real positions).

        Returns (embeds [B, 2 max P, D], pos [B, P]: where stream position j of example i sits).
        """
        b, p, d = prefix.shape
        length = 2 * p
        t = torch.arange(length, device=prefix.device)[None]  # [1, L]
        in_prefix = t < lens[:, None]
        in_stream = (~in_prefix) & (t < 2 * lens[:, None])
        p_idx = t.clamp(max=p - 1).expand(b, -1)
        s_idx = (t - lens[:, None]).clamp(0, p - 1)
        from_prefix = torch.gather(prefix, 1, p_idx.unsqueeze(-1).expand(-1, -1, d))
        from_stream = torch.gather(stream, 1, s_idx.unsqueeze(-1).expand(-1, -1, d))
        embeds = torch.where(in_prefix.unsqueeze(-1), from_prefix, 0.0)
        embeds = torch.where(in_stream.unsqueeze(-1), from_stream, embeds)
        pos = (lens[:, None] + torch.arange(p, device=prefix.device)[None]).clamp(max=length - 1)
        return embeds, pos

    # ---------------------------------------------------------------------------------------
    # inference
    # ---------------------------------------------------------------------------------------

    @torch.no_grad()
    def score(self, phone_ids: Tensor, word_pos: Tensor, stress: Tensor, style: Tensor,
              tokens: Tensor) -> Tensor:
        """Uncached logits [P, vocab] for one utterance (row j predicts tokens[j]): the reference
        the cached `generate` must match."""
        phone_ids, word_pos = self._as_batch1(phone_ids, 2), self._as_batch1(word_pos, 2)
        style, tokens = self._as_batch1(style, 2), self._as_batch1(tokens, 2)
        stress = self._as_batch1(stress, 2)
        p = phone_ids.shape[1]
        prefix = self._prefix(phone_ids, word_pos, stress, style)
        bos = torch.full((1, 1), self.bos_id, dtype=torch.long, device=phone_ids.device)
        stream = self._stream_embeds(torch.cat([bos, tokens[:, : p - 1].long()], 1), phone_ids)
        hidden = self.transformer(inputs_embeds=torch.cat([prefix, stream], 1),
                                  use_cache=False).last_hidden_state
        return self.head(hidden[0, p:]).float()

    @torch.no_grad()
    def generate(  # type: ignore[override]
        self,
        phone_ids: Tensor,
        word_pos: Tensor,
        stress: Tensor,
        style: Tensor,
        prompt_tokens: Tensor | None = None,
        *,
        top_k: int = 5,
        top_p: float = 1.0,
        temperature: float = 0.7,
        repetition_penalty: float = 1.0,
        generator: torch.Generator | None = None,
        return_logits: bool = False,
        **_ignored: object,
    ) -> GenerationResult:
        """Exactly one token per phone that has no prompt token.

        phone_ids, word_pos, stress: [P] (or [1, P]) long, the prompt's phones first when a prompt is
        given; style [style_dim]; prompt_tokens [P_pr] codes of the prompt's phones or None.
        Returns the P - P_pr new tokens (`hit_cap` is always False: the length is the phone
        count by construction). `max_new_tokens` and the like are accepted and ignored.
        """
        check_sampling_args(top_k, top_p, temperature, repetition_penalty)
        phone_ids, word_pos = self._as_batch1(phone_ids, 2), self._as_batch1(word_pos, 2)
        style, prompt_tokens = self._as_batch1(style, 2), self._as_batch1(prompt_tokens, 2)
        stress = self._as_batch1(stress, 2)
        if phone_ids.shape[0] != 1:
            raise ValueError("generate() handles one utterance at a time")
        p = phone_ids.shape[1]
        n_prompt = 0 if prompt_tokens is None else int(prompt_tokens.shape[1])
        if n_prompt >= p:
            raise ValueError(f"{n_prompt} prompt tokens leave no phone to generate of {p}")
        if 2 * p > self.max_positions:
            raise VoicelabError(
                f"the text plus reference has {p} phones, which needs {2 * p} GPT positions, "
                f"more than model.gpt_max_positions={self.max_positions}: use a shorter "
                "reference clip or shorter sentences"
            )
        prefix = self._prefix(phone_ids, word_pos, stress, style)
        cache = KVCache(self.config, 2 * p, prefix.device, prefix.dtype)
        sampling = dict(top_k=top_k, top_p=top_p, temperature=temperature,
                        repetition_penalty=repetition_penalty)
        out: list[Tensor] = []
        logits_log: list[Tensor] = []
        history = phone_ids.new_zeros(1, 0)
        prev = torch.full((1, 1), self.bos_id, dtype=torch.long, device=phone_ids.device)
        with cpu_threads(prefix.device, GEN_CPU_THREADS):
            self._decode(prefix, cache)
            for j in range(p):
                x = self._stream_embeds(prev, phone_ids[:, j : j + 1])
                logits = self.head(self._decode(x, cache)[:, -1]).float()  # [1, vocab]
                # a damaged model must still give one valid code per phone, never a crash
                logits = torch.nan_to_num(logits, nan=0.0, posinf=1e4, neginf=-1e4)
                if j < n_prompt:  # forced: the reference's own token
                    nxt = prompt_tokens[0, j : j + 1].long()
                else:
                    logits[:, self.eos_id] = float("-inf")  # no EOS: one token per phone
                    if return_logits:
                        logits_log.append(logits[0])
                    nxt = sample_next(logits, history=history, generator=generator, **sampling)
                    out.append(nxt)
                history = torch.cat([history, nxt.view(1, 1)], 1)
                prev = nxt.view(1, 1)
        tokens = torch.cat(out).long() if out else phone_ids.new_zeros(0)
        step_logits = torch.stack(logits_log) if return_logits else None
        return GenerationResult(tokens=tokens, hit_cap=False, step_logits=step_logits)
