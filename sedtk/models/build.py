"""Build or load a model of either kind (``model.kind``): the one place trainer and decoder ask.

* ``llm`` -- the paper's model, :class:`~sedtk.models.sed_model.SEDModel` (Sys. 4-7, Tab. 1 and 3);
* ``ssl_ser`` -- the SSL-based SER baseline, :class:`~sedtk.models.ssl_ser.SSLSERModel` (Tab. 2 Sys. 1-3).

Both have the same training interface (``forward(batch, task, beta) -> {"loss", "ce", ...}``,
``configure_training``, ``trained_state_dict`` / ``load_trained_state``) and decoding interface
(``features``, ``generate``, ``label_logprobs``, ``upstream``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from sedtk.config import Config
from sedtk.errors import ConfigError

KINDS = ("llm", "ssl_ser")


def build_model(
    cfg: Config,
    device: torch.device | str = "cpu",
    feature_meta: Mapping | None = None,
    online: bool | None = None,
    train_data=None,
):
    """``(model, cfg)`` for ``cfg.model.kind``, with the config's data-dependent fields filled in.

    ``train_data`` (a :class:`~sedtk.data.datadir.DataDir`) gives the ssl_ser model its emotion
    classes and character vocabulary when the config does not hold them yet (a new training run).
    """
    kind = cfg.model.kind
    if kind == "ssl_ser":
        from sedtk.models.ssl_ser import build_ssl_ser

        return build_ssl_ser(
            cfg, device=device, feature_meta=feature_meta, online=online, train_data=train_data
        )
    if kind == "llm":
        from sedtk.models.sed_model import build_model as build_llm_model

        return build_llm_model(cfg, device=device, feature_meta=feature_meta, online=online)
    raise ConfigError(f"model.kind {kind!r}: use one of {', '.join(KINDS)}")
