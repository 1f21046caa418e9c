"""Losses of the diffusion-based anomaly synthesizers and of detectors trained on their output.

- ``masked_denoising_loss``: AnoGen's stage-1 loss, the noise-prediction error weighted by the
  defect mask and averaged over *all* latent positions (not normalised by the mask area).
- ``focal_loss``: focal loss on softmax probabilities with label smoothing (gamma 2, as in
  DRAEM/SeaS); ``reduction="none"`` gives the per-pixel map.
- ``weak_box_focal_loss``: AnoGen's stage-3 loss for box-labelled (weak) anomalies: inside the
  box a pixel is supervised only where the detector already predicts anomaly probability > tau;
  outside the box every pixel is supervised as normal.

>>> import torch
>>> probs = torch.softmax(torch.randn(2, 2, 8, 8), 1)
>>> box = torch.zeros(2, 8, 8); box[:, 2:5, 2:5] = 1
>>> weak_box_focal_loss(probs, box, tau=0.1).shape
torch.Size([])
"""

from __future__ import annotations

import torch

__all__ = ["masked_denoising_loss", "focal_loss", "box_supervision_weight", "weak_box_focal_loss"]


def masked_denoising_loss(predicted: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """mean over (b, c, h, w) of (target - predicted)^2 * mask; ``mask`` broadcasts over channels."""
    if mask.shape[-2:] != predicted.shape[-2:]:
        raise ValueError(f"mask {tuple(mask.shape)} does not match the prediction {tuple(predicted.shape)}")
    return ((target.float() - predicted.float()) ** 2 * mask.float()).mean()


def focal_loss(probs: torch.Tensor, target: torch.Tensor, *, gamma: float = 2.0, alpha: float | None = None,
               smoothing: float = 1e-5, reduction: str = "mean") -> torch.Tensor:
    """Focal loss ``-alpha (1 - p_t)^gamma log p_t`` on class probabilities ``[B, C, H, W]``.

    ``target`` holds class indices ``[B, H, W]`` (or ``[B, 1, H, W]``); a float target must hold
    whole numbers (a soft mask is refused rather than truncated). The one-hot target is
    smoothed to ``[smoothing / (C - 1), 1 - smoothing]``. ``reduction``: mean, sum or none
    (per-pixel ``[B, H, W]``).
    """
    if target.dim() == probs.dim():
        target = target[:, 0]
    if target.is_floating_point() and bool((target != target.round()).any()):
        raise ValueError("focal_loss: target holds fractional values (a soft or interpolated mask?); class "
                         "indices are needed, e.g. (mask >= 0.5).long()")
    target = target.long()
    classes = probs.shape[1]
    one_hot = torch.nn.functional.one_hot(target, classes).movedim(-1, 1).to(probs.dtype)
    if smoothing:
        one_hot = one_hot.clamp(smoothing / max(classes - 1, 1), 1.0 - smoothing)
    pt = (one_hot * probs).sum(1) + smoothing
    loss = -((1.0 - pt).clamp(min=0) ** gamma) * pt.log()
    if alpha is not None:
        loss = alpha * loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be mean, sum or none, got {reduction!r}")


def box_supervision_weight(anomaly_prob: torch.Tensor, box: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """W = 1[p > tau] OR 1[box == 0]: which pixels a weakly (box) labelled sample supervises."""
    return ((anomaly_prob.detach() > tau) | (box == 0)).to(anomaly_prob.dtype)


def weak_box_focal_loss(probs: torch.Tensor, box: torch.Tensor, *, tau: float = 0.1, gamma: float = 2.0,
                        smoothing: float = 1e-5) -> torch.Tensor:
    """mean over pixels of FL(probs, box) * W with W from ``box_supervision_weight``.

    ``probs``: softmax output ``[B, 2, H, W]`` (channel 1 = anomaly); ``box``: ``[B, H, W]`` or
    ``[B, 1, H, W]`` in {0, 1}. tau = 0.1 for DRAEM, 0.0 for DeSTSeg (almost full supervision).
    """
    if box.dim() == probs.dim():
        box = box[:, 0]
    per_pixel = focal_loss(probs, box, gamma=gamma, smoothing=smoothing, reduction="none")
    weight = box_supervision_weight(probs[:, 1], box, tau)
    return (per_pixel * weight).mean()
