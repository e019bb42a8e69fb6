"""The text domain's metrics for a trained model (``diffkit evaluate``).

- **likelihood** on held-out texts, bits per token (BOS excluded, EOS included) and per
  character: the AR model's exact NLL, or the diffusion model's variational bound. The bound
  is the core's :func:`diffkit.variational_bound` (its prior and diffusion KL terms over the
  embeddings ``E(w)``, on ``nll_steps`` of the T steps: a coarser chain is still a bound)
  with the Gaussian decoder replaced by Diffusion-LM's rounding decoder
  ``-log p(w | x_{t_0})`` (softmax of the rounding logits of ``x0_hat``), which the core's
  two decoders (discretized pixels, continuous density) cannot express. The pad positions
  after EOS are part of the diffusion model's sequence, so its bound also pays for them.
- **built-in grammar**: the true law's NLL on the same texts (the floor) and the share of
  samples the grammar accepts.
- **lm-score** (Li et al. 2022): a teacher AR model's perplexity on the samples, next to its
  perplexity on held-out human texts (``--teacher RUN``).
- **diversity**: distinct-1/2, self-BLEU, the share of samples copying a training text.
- **mr->ref** (conditional models): one sample per held-out MR, multi-reference BLEU,
  ROUGE-L and slot error.
- **infilling** (diffusion models): a middle span of held-out texts filled in, exact match
  and BLEU of the filled spans.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from diffkit.domains.text import metrics
from diffkit.domains.text.data import encode_corpus
from diffkit.domains.text.generate import (
    Template,
    allowed_of,
    default_clamp,
    free_template,
    generate_texts,
    sample_ids,
    text_only,
    tokenizer_of,
)
from diffkit.domains.text.options import TextEvaluateOptions, TextSampleOptions
from diffkit.likelihood import variational_bound

Tensor = torch.Tensor
LOG2 = math.log(2.0)


def bound_times(schedule, steps: int) -> Tensor:
    """``steps`` ascending times from ``t_min`` to ``t_max`` (integers for discrete schedules)."""
    times = torch.linspace(schedule.t_min, schedule.t_max, steps, dtype=torch.float64)
    return times.round().unique() if schedule.discrete else times


@torch.no_grad()
def diffusion_nll(net, schedule, ids: Tensor, *, steps: int, cond=None, generator=None) -> Tensor:
    """Upper bound on ``-log p(ids)`` in nats per text (B,): core KL terms + rounding decoder."""
    device = next(net.parameters()).device
    ids = ids.to(device)
    cond = {k: v.to(device) for k, v in (cond or {}).items()}

    def model(x, t, **c):  # the core's bound runs in float64; the network in its own dtype
        return net(x.float(), t.float(), **c).double()

    times = bound_times(schedule, steps)
    x0 = net.embed(ids).double()  # (B, L, E)
    bound = variational_bound(
        model,
        x0,
        schedule,
        prediction="x0",
        cond=cond,
        times=times,
        decoder="gaussian",
        generator=generator,
    )
    alpha, sigma = (c.item() for c in schedule.alpha_sigma(times[:1]))
    where = generator.device if generator is not None else device
    noise = torch.randn(x0.shape, generator=generator, dtype=torch.float64, device=where)
    noise = noise.to(device)
    t0 = torch.full((len(ids),), float(times[0]), device=device)
    x0_hat = net((alpha * x0 + sigma * noise).float(), t0, **cond)
    decoder = F.cross_entropy(net.logits(x0_hat).transpose(1, 2), ids, reduction="none")  # (B, L)
    return (bound.prior + bound.diffusion).to(device) + decoder.double().sum(1)


@torch.no_grad()
def ar_nll(net, ids: Tensor, pad: Tensor, cond=None) -> Tensor:
    """Exact ``-log p(ids)`` in nats per text (B,) of the AR model."""
    device = next(net.parameters()).device
    cond = {k: v.to(device) for k, v in (cond or {}).items()}
    return net.nll(ids.to(device), pad.to(device), **cond).double()


def per_unit(nats: Tensor, units) -> float:
    """Total nats over total units, in bits."""
    return float(nats.sum().item() / max(float(sum(units)), 1.0) / LOG2)


def teacher_perplexity(teacher: str, texts: list[str]) -> float:
    """The AR teacher's perplexity (per token, EOS included) on ``texts``."""
    from diffkit.inference import load_model

    _, net, _, found = load_model(teacher)
    tok = tokenizer_of(found.config["settings"])
    length = found.config["model"]["max_length"]
    enc = encode_corpus(tok, [t if t.strip() else " " for t in texts], length)
    nats = ar_nll(net, enc.ids, enc.pad)
    return math.exp(nats.sum().item() / (enc.pad.sum().item() - len(texts)))


def diversity(samples: list[str], train_texts) -> dict[str, float]:
    return {
        "distinct_1": metrics.distinct_n(samples, 1),
        "distinct_2": metrics.distinct_n(samples, 2),
        "self_bleu": metrics.self_bleu(samples),
        "copy_rate": metrics.copy_rate(samples, train_texts),
    }


def likelihood(net, schedule, texts, tok, config, generator) -> dict[str, float]:
    """Bits per token and per character on ``texts`` (and the grammar's floor on them)."""
    enc = encode_corpus(tok, texts, config.max_length)
    tokens = (enc.pad.sum(1) - 1).tolist()  # each text's tokens and its EOS
    chars = [len(t) for t in texts]
    if config.model == "ar":
        nats = ar_nll(net, enc.ids, enc.pad)
    else:
        nats = diffusion_nll(net, schedule, enc.ids, steps=config.nll_steps, generator=generator)
    return {"bits_per_token": per_unit(nats, tokens), "bits_per_char": per_unit(nats, chars)}


def grammar_floor(texts, tok, config) -> dict[str, float]:
    """The true law's NLL on ``texts`` in the same units: no model can do better on average."""
    from diffkit.domains.text.grammar import Grammar

    g = Grammar()
    nats = torch.tensor([-g.log_prob(t) for t in texts], dtype=torch.float64)
    enc = encode_corpus(tok, texts, config.max_length)
    tokens = (enc.pad.sum(1) - 1).tolist()
    return {
        "grammar_bits_per_token": per_unit(nats, tokens),
        "grammar_bits_per_char": per_unit(nats, [len(t) for t in texts]),
    }


def conditional_samples(
    net, schedule, mrs, tok, config, allowed, *, sampler, steps, guidance, generator
):
    """One text per MR (ancestral sampling for the AR model, guided for diffusion)."""
    cond = encode_corpus(tok, mrs, config.cond_length)
    device = next(net.parameters()).device
    cond_ids, cond_pad = cond.ids.to(device), cond.pad.to(device)
    if config.model == "ar":
        ids = net.generate(
            len(mrs),
            max_length=config.max_length,
            cond_ids=cond_ids,
            cond_pad=cond_pad,
            generator=generator,
        )
        return tok.decode_batch(ids.cpu())
    tpl = free_template(tok, config.max_length, allowed)
    ids = sample_ids(
        net,
        schedule,
        len(mrs),
        tpl,
        clamp=default_clamp(config),
        sampler=sampler,
        steps=steps,
        cond={"cond_ids": cond_ids, "cond_pad": cond_pad},
        guidance=None if guidance == 1.0 else guidance,
        generator=generator,
    )
    return tok.decode_batch(ids.cpu())


def infill_scores(net, schedule, texts, tok, config, allowed, *, sampler, steps, generator):
    """Fill a middle span of up to 3 tokens of each text; exact match and BLEU of the spans."""
    enc = encode_corpus(tok, texts, config.max_length)
    n, length = enc.ids.shape
    known = enc.ids.new_ones(n, length, dtype=torch.bool)
    per_position = allowed.expand(n, length, -1).clone()  # (n, L, V)
    spans = []
    for i, real in enumerate(enc.pad.sum(1).tolist()):
        body = real - 2  # tokens between BOS and EOS
        k = min(3, max(1, body - 1))
        start = 1 + (body - k) // 2
        known[i, start : start + k] = False
        per_position[i, start : start + k] = text_only(tok, allowed)
        spans.append((start, k))
    tpl = Template(enc.ids, known, per_position)
    ids = sample_ids(
        net,
        schedule,
        n,
        tpl,
        sampler=sampler,
        steps=steps,
        clamp=default_clamp(config),
        generator=generator,
    )
    filled = [tok.decode(ids[i, s : s + k].cpu()) for i, (s, k) in enumerate(spans)]
    truth = [tok.decode(enc.ids[i, s : s + k]) for i, (s, k) in enumerate(spans)]
    return {
        "infill_exact_match": metrics.infill_exact_match(filled, truth),
        "infill_bleu": metrics.infill_bleu(filled, truth),
    }


def evaluate(
    net, schedule, data, *, config, settings, prediction, generator=None, options=None
) -> dict[str, float]:
    """The metrics of the module docstring as a flat dict of floats."""
    options = options or TextEvaluateOptions()
    config = options.onto(
        config,
        sampler="eval_sampler",
        steps="eval_steps",
        num_samples="eval_samples",
        guidance="eval_guidance",
    )
    tok = tokenizer_of(settings)
    sampler, steps, n = config.eval_sampler, config.eval_steps, config.eval_samples
    guidance = config.eval_guidance
    train_texts, val = data.train.corpus.texts, data.val.corpus
    allowed = allowed_of(settings, config.vocab_size)
    draw = {"sampler": sampler, "steps": steps, "generator": generator}
    samples = generate_texts(
        net,
        schedule,
        n,
        config=config,
        settings=settings,
        prediction=prediction,
        options=TextSampleOptions(),
        **draw,
    )
    out: dict[str, float] = {"samples": float(len(samples)), **diversity(samples, train_texts)}
    grammar = settings.get("source") == "grammar"
    if grammar:
        from diffkit.domains.text.grammar import Grammar

        out["grammar_acceptance"] = sum(map(Grammar().accepts, samples)) / len(samples)
    held = list(val.texts[: config.nll_texts])
    if held and (config.model == "ar" or config.nll_steps >= 2):
        out |= likelihood(net, schedule, held, tok, config, generator)
        if grammar:
            out |= grammar_floor(held, tok, config)
    teacher = str(options.teacher) if options.teacher is not None else config.teacher
    if teacher:
        out["lm_score"] = teacher_perplexity(teacher, samples)
        out["teacher_ppl_human"] = teacher_perplexity(teacher, held or list(val.texts))
    if config.conditional and val.conds is not None:
        mrs, refs = metrics.group_references(val.conds, val.texts)
        mrs, refs = list(mrs)[:n], list(refs)[:n]
        hyps = conditional_samples(
            net, schedule, mrs, tok, config, allowed, guidance=guidance, **draw
        )
        out["bleu"] = metrics.corpus_bleu(hyps, refs)
        out["rouge_l"] = metrics.rouge_l(hyps, refs)
        out["slot_error"] = metrics.slot_error(mrs, hyps)
    if config.model != "ar" and config.infill_texts:
        texts = list(val.texts[: config.infill_texts])
        out |= infill_scores(net, schedule, texts, tok, config, allowed, **draw)
    return out
