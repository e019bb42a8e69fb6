"""Text domain: Diffusion-LM (Li et al. 2022) and CDCD (Dieleman et al. 2022) on sentencepiece
tokens, with an autoregressive baseline beside them. Pure torch pieces: the shared transformer
block (``blocks``), the denoiser (``network``), its losses (``loss``), sampling with clamping,
guidance and templates (``generate``), the causal LM (``baseline``); data: the tokenizer
(``tokenizer``, the only sentencepiece user), readers (``data``) and the built-in grammar
(``grammar``); metrics (``metrics``, ``evaluate``); the registered ``Domain`` (``domain``) with
its command options (``options``)."""
