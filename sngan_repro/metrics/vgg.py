"""VGG-16 as the feature network of improved precision and recall (Kynkaanniemi et al. 2019, Sec. 3: the 4096-d
second fully connected layer of an ImageNet VGG-16), through torch-fidelity's extractor (its ``fc2_relu``; images
resized to 224x224 with TF1's bilinear resize and ImageNet-normalized)."""

import torch
from torch import nn

from .inception import load_network, weights_id

WEIGHTS_FILE = "vgg16-397923af.pth"  # torchvision's VGG16_Weights.IMAGENET1K_V1


class VGG16Features(nn.Module):
    """uint8 (N, C, H, W) images -> (fc2 features after ReLU (N, 4096) float64, None: no class logits)."""

    gives_logits = False

    def __init__(self, weights_path: str | None = None):
        super().__init__()
        from torch_fidelity.feature_extractor_vgg16 import FeatureExtractorVGG16

        self.net = FeatureExtractorVGG16("vgg16", ["fc2_relu"], feature_extractor_weights_path=weights_path)
        self.name = f"vgg16-fc2-relu[{weights_id(weights_path, WEIGHTS_FILE)}]"

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, None]:
        if images.shape[1] == 1:  # grey datasets: the network takes RGB
            images = images.expand(-1, 3, -1, -1)
        (features,) = self.net(images)
        return features.double(), None


def load_vgg16(weights_path: str | None, device="cpu") -> VGG16Features:
    """The extractor, or one sentence on why it cannot be had and what to do."""
    return load_network(VGG16Features, weights_path, device, "VGG-16", WEIGHTS_FILE, "torchvision's model zoo",
                        "metrics.vgg16_weights")
