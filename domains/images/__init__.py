"""Images domain: a U-Net noise predictor, a KL autoencoder for latent diffusion, readers that
return an ``ImageSet`` in [-1, 1], and metrics in the feature space of a classifier trained
on the data (``unet``, ``autoencoder``, ``data``, ``evaluate``); the registered ``Domain``
(``domain``) with its network wrapper (``network``), sampling options (``generate``) and
``diffkit evaluate`` metrics (``score``)."""
