"""The text domain's metrics for a trained model (``diffkit evaluate``).

- **likelihood** on held-out texts, bits per token (BOS excluded, EOS included) and per
  character: the AR model's exact NLL, or the diffusion model's variational bound on the
  embeddings ``E(w)`` with Diffusion-LM's rounding decoder ``-log p(w | x_{t_0})`` (softmax
  of the rounding logits of x0_hat), which the core's two decoders (discretized pixels,
  continuous density) cannot express. Its KL terms come from the core's posterior and
  ``gaussian_kl``: all T steps, estimated by sampling ``nll_steps`` of them per text
  (:func:`diffusion_nll` says why not the core's ``variational_bound`` on a coarse chain).
  The pad positions after EOS are part of the diffusion model's sequence, so the bound
  also pays for them.
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

from diffkit.errors import ConfigError
from diffkit.likelihood import gaussian_kl, variational_bound
from diffkit.process import expand, posterior

from . import metrics
from .data import encode_corpus
from .generate import (
    Template,
    allowed_of,
    default_clamp,
    free_template,
    generate_texts,
    sample_ids,
    text_only,
    tokenizer_of,
)
from .options import TextEvaluateOptions, TextSampleOptions
from .rerank import consensus_of

Tensor = torch.Tensor
LOG2 = math.log(2.0)


def _randn(shape, generator, device) -> Tensor:
    where = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, dtype=torch.float64, device=where).to(device)


def rounding_decoder(net, schedule, x0, ids: Tensor, t: float, cond: dict, generator) -> Tensor:
    """``-log p(ids | x_t)`` (B,) at the first latent step: the rounding softmax of x0_hat."""
    alpha, sigma = (c.item() for c in schedule.alpha_sigma(torch.tensor(t, dtype=torch.float64)))
    x_t = alpha * x0 + sigma * _randn(x0.shape, generator, x0.device)
    t_batch = torch.full((len(ids),), float(t), device=x0.device)
    logits = net.logits(net(x_t.float(), t_batch, **cond))
    return F.cross_entropy(logits.transpose(1, 2), ids, reduction="none").double().sum(1)


@torch.no_grad()
def diffusion_nll(net, schedule, ids: Tensor, *, steps: int, cond=None, generator=None) -> Tensor:
    """Upper bound on ``-log p(ids)`` in nats per text (B,).

    Discrete schedules: the full T-step bound (Ho et al. 2020, eq. 5) with its T - 1 KL
    terms estimated without bias from ``steps`` uniformly drawn steps per text, times
    (T - 1) / steps; each KL between the core's posterior q(x_{t-1} | x_t, x0) and the
    model's (``diffkit.process.posterior`` at x0_hat, the posterior's variance). A chain on
    ``steps`` of the T steps (the core's :func:`diffkit.variational_bound` with ``times=``)
    is also a bound but a far looser one: 230 bits/token where this gives a few tens in
    one quick E2E run. Continuous schedules use the core's bound on ``steps`` times.
    The decoder is the rounding decoder ``-log p(w | x_{t_0})`` in both cases.
    """
    device = next(net.parameters()).device
    ids = ids.to(device)
    cond = {k: v.to(device) for k, v in (cond or {}).items()}
    x0 = net.embed(ids).double()  # (B, L, E)
    b = len(ids)

    def total(v: Tensor) -> Tensor:
        return v.flatten(1).sum(1)  # (B,)

    if not schedule.discrete:
        times = torch.linspace(schedule.t_min, schedule.t_max, steps, dtype=torch.float64)

        def model(x, t, **c):  # the core's bound runs in float64; the network in its own
            return net(x.float(), t.float(), **c).double()

        bound = variational_bound(
            model, x0, schedule, prediction="x0", cond=cond, times=times,
            decoder="gaussian", generator=generator,
        )  # fmt: skip
        kl = (bound.prior + bound.diffusion).to(device)
        return kl + rounding_decoder(net, schedule, x0, ids, times[0].item(), cond, generator)
    T = schedule.T
    a_T, s_T = (c.item() for c in schedule.alpha_sigma(torch.tensor(float(T - 1))))
    prior = total(gaussian_kl(a_T * x0, s_T**2, 0.0, a_T**2 + s_T**2))
    kl = torch.zeros(b, dtype=torch.float64, device=device)
    for _ in range(steps):
        u = torch.rand(b, generator=generator, device=generator.device if generator else device)
        t = (1 + (u * (T - 1)).floor()).double().to(device)  # uniform on 1..T-1, per text
        a_t, s_t = (expand(c.to(device), x0) for c in schedule.alpha_sigma(t.cpu()))
        a_s, s_s = (expand(c.to(device), x0) for c in schedule.alpha_sigma((t - 1).cpu()))
        x_t = a_t * x0 + s_t * _randn(x0.shape, generator, device)
        x0_hat = net(x_t.float(), t.float(), **cond).double()
        mean_q, var = posterior(x0, x_t, a_s, s_s, a_t, s_t)
        mean_p, _ = posterior(x0_hat, x_t, a_s, s_s, a_t, s_t)
        kl += total(gaussian_kl(mean_q, var, mean_p, var))
    kl = kl * (T - 1) / steps
    return prior + kl + rounding_decoder(net, schedule, x0, ids, 0.0, cond, generator)


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

    domain, net, _, found = load_model(teacher)
    if domain.name != "text" or found.config["model"].get("model") != "ar":
        raise ConfigError(
            f"--teacher {teacher} is no AR text run; pass one trained with "
            "`diffkit train --domain text --model ar`."
        )
    tok = tokenizer_of(found.config["settings"])
    return ar_perplexity(net, tok, found.config["model"]["max_length"], texts)


def ar_perplexity(net, tok, length: int, texts: list[str]) -> float:
    """An AR model's perplexity (per token, EOS included) on ``texts`` cut to ``length``."""
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
    elif config.model == "masked":
        from .masked import masked_nll

        nats = masked_nll(net, enc.ids, generator=generator)
    else:
        nats = diffusion_nll(net, schedule, enc.ids, steps=config.nll_steps, generator=generator)
    return {"bits_per_token": per_unit(nats, tokens), "bits_per_char": per_unit(nats, chars)}


def grammar_floor(texts, tok, config) -> dict[str, float]:
    """The true law's NLL on ``texts`` in the same units: no model can do better on average."""
    from .grammar import Grammar

    g = Grammar()
    nats = torch.tensor([-g.log_prob(t) for t in texts], dtype=torch.float64)
    enc = encode_corpus(tok, texts, config.max_length)
    tokens = (enc.pad.sum(1) - 1).tolist()
    return {
        "grammar_bits_per_token": per_unit(nats, tokens),
        "grammar_bits_per_char": per_unit(nats, [len(t) for t in texts]),
    }


def conditional_samples(
    net, schedule, mrs, tok, config, allowed, *, sampler, steps, guidance, generator,
    temperature=None, drafts=1, slot_rerank=False,
):  # fmt: skip
    """One text per MR (ancestral sampling for the AR model, guided for diffusion);
    ``temperature`` tempers the AR and masked models' draws (None: 1, 0: argmax);
    ``drafts`` > 1 samples that many texts per MR in one batch and keeps their consensus
    (:func:`rerank.consensus_of`), with ``slot_rerank`` among the drafts that leave out the
    fewest of the MR's slot values."""
    cond = encode_corpus(tok, mrs, config.cond_length)
    if cond.truncated:  # the model never saw longer conditions: their tails are lost
        print(f"note: {cond.report('conditions', 'cond_length')} The model's cond_length is "
              "fixed at training: diffkit train --set cond_length=N.", flush=True)  # fmt: skip
    device = next(net.parameters()).device  # the drafts, draft-major: every MR, then again
    cond_ids, cond_pad = (x.repeat(drafts, 1).to(device) for x in (cond.ids, cond.pad))
    if config.model == "ar":
        ids = net.generate(
            len(cond_ids),
            max_length=config.max_length,
            cond_ids=cond_ids,
            cond_pad=cond_pad,
            generator=generator,
            temperature=1.0 if temperature is None else temperature,
        )
    else:
        ids = sample_ids(
            net,
            schedule,
            len(cond_ids),
            free_template(tok, config.max_length, allowed),
            clamp=default_clamp(config),
            sampler=sampler,
            steps=steps,
            cond={"cond_ids": cond_ids, "cond_pad": cond_pad},
            guidance=None if guidance == 1.0 else guidance,
            temperature=temperature,
            generator=generator,
        )
    return consensus_of(tok.decode_batch(ids.cpu()), drafts, mrs if slot_rerank else None)


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
        from .grammar import Grammar

        out["grammar_acceptance"] = sum(map(Grammar().accepts, samples)) / len(samples)
    held = list(val.texts[: config.nll_texts])
    if held and (config.model == "ar" or config.nll_steps >= 2):
        out |= likelihood(net, schedule, held, tok, config, generator)
        if grammar:
            out |= grammar_floor(held, tok, config)
    teacher = str(options.teacher) if options.teacher is not None else config.teacher
    if teacher is not None:
        out["lm_score"] = teacher_perplexity(teacher, samples)
        out["teacher_ppl_human"] = teacher_perplexity(teacher, held or list(val.texts))
    if config.conditional and val.conds is not None:
        mrs, refs = metrics.group_references(val.conds, val.texts)
        mrs, refs = list(mrs)[:n], list(refs)[:n]
        hyps = conditional_samples(
            net, schedule, mrs, tok, config, allowed, guidance=guidance,
            drafts=options.drafts, slot_rerank=options.slot_rerank, **draw,
        )  # fmt: skip
        out["bleu"] = metrics.corpus_bleu(hyps, refs)
        out["rouge_l"] = metrics.rouge_l(hyps, refs)
        out["slot_error"] = metrics.slot_error(mrs, hyps)
    if config.model != "ar" and config.infill_texts:
        texts = list(val.texts[: config.infill_texts])
        out |= infill_scores(net, schedule, texts, tok, config, allowed, **draw)
    return out
