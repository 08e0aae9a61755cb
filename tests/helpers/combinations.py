"""The architecture families and critic normalizations every combination test runs (tests/test_combinations.py,
tests/test_distributed.py), the combinations the project refuses with the sentence it refuses them with, and the
overrides of a three-update run of one combination on small synthetic images."""

FAMILIES = {
    "standard_cnn": ["arch=sngan_cnn", "dataset.image_size=16"],
    "resnet": ["arch=sngan_resnet", "dataset.image_size=32"],
    "xiang_dcgan_wn": ["arch=xiang_dcgan", "arch.variant=wn", "dataset.image_size=16"],
    "xiang_dcgan_vanilla": ["arch=xiang_dcgan", "arch.variant=vanilla", "dataset.image_size=16"],
    "xiang_dcgan_wn_mean_bn": ["arch=xiang_dcgan", "arch.variant=wn_mean_bn", "dataset.image_size=16"],
    # two of Sec. 5.6's five levels (a stride-2 and a stride-1 residual block each, a 1x1 shortcut where the channels
    # change, the final conv over the last map): every kind of layer of the 21-layer network, at 8 px
    "xiang_resnet": ["arch=xiang_resnet", "arch.variant=wn", "arch.features=[64,128]", "dataset.image_size=8"],
    "iwgan": ["arch=iwgan", "dataset.image_size=16"],
    "infogan": ["arch=infogan", "dataset.image_size=16"],
}
# Autoencoder critics output reconstruction energies and take only their own loss (it overrides the NORMS' loss)
AUTOENCODERS = {
    "began": ["arch=began", "loss=began", "dataset.image_size=16"],
    "ebgan": ["arch=ebgan", "loss=ebgan", "dataset.image_size=16"],
    "infogan_began": ["arch=infogan_began", "loss=began", "dataset.image_size=16"],
    "infogan_ebgan": ["arch=infogan_ebgan", "loss=ebgan", "dataset.image_size=16"],
}
SAN_G = 1.1  # a compensation factor other than 1, so that the invariant 1/g is not the trivial 1
NORMS = {
    "none": ["norm=none", "loss=hinge"],
    "sn": ["norm=sn", "loss=hinge"],
    "san_projection": ["norm=san", f"norm.compensation={SAN_G}", "loss=hinge"],
    "san_reparametrization": ["norm=san", "norm.mode=reparametrization", f"norm.compensation={SAN_G}", "loss=hinge"],
    "san_svd_dense": ["norm=san", "norm.mode=reparametrization", "norm.dense=svd", f"norm.compensation={SAN_G}",
                      "loss=hinge"],
    "wn": ["norm=wn", "loss=hinge"],
    "bn": ["norm=bn", "loss=hinge"],
    "ln": ["norm=ln", "loss=hinge"],
    "clip": ["norm=clip", "loss=wgan"],
    "gp": ["norm=gp", "loss=wgan"],
    "ortho": ["norm=ortho", "norm.strength=0.1", "loss=wgan"],
}
REFUSED = {
    ("xiang_dcgan_wn", "clip"): r"norm=clip bounds a layer's stored parameters, but this architecture reparametrizes",
    ("xiang_resnet", "clip"): r"norm=clip bounds a layer's stored parameters, but this architecture reparametrizes",
    ("xiang_dcgan_wn", "san_projection"): r"norm.mode=projection divides a layer's stored weight, .* use norm.mode=rep",
    ("xiang_resnet", "san_projection"): r"norm.mode=projection divides a layer's stored weight, .* use norm.mode=rep",
    ("xiang_dcgan_wn_mean_bn", "clip"): r"norm=clip bounds a layer's stored parameters, but this architecture",
    ("xiang_dcgan_wn_mean_bn", "san_projection"): r"norm.mode=projection divides a layer's stored weight",
    ("iwgan", "bn"): r"arch=iwgan's critic has its own layer norm after every conv;",
    ("iwgan", "ln"): r"arch=iwgan's critic has its own layer norm after every conv;",
    ("infogan", "bn"): r"arch=infogan's critic has its own batch norm",
    ("infogan", "ln"): r"arch=infogan's critic has its own batch norm",
}
REFUSED |= {(family, norm): rf"^{family.split('_')[-1].upper()}'s autoencoder critic takes no critic normalization "
            for family in AUTOENCODERS for norm in NORMS if norm != "none"}


def combination_overrides(family: str, norm: str, output_dir) -> list[str]:
    """Three generator updates of ``family`` (a key of FAMILIES or AUTOENCODERS) with ``norm`` (a key of NORMS) on
    32 synthetic RGB images, batch 4, logging and spectral diagnostics at every update, into ``output_dir``."""
    return [*NORMS[norm], *{**FAMILIES, **AUTOENCODERS}[family], "dataset=synthetic", "dataset.channels=3",
            "dataset.size=32", "arch.width=0.0625", "optim=B", "train.steps=3", "train.batch_size=4",
            "train.g_batch_size=4", "train.log_every=1", "train.diagnostics_every=1", "train.sample_every=100",
            "train.num_samples=4", "train.checkpoint_every=0", "metrics=none", "logger=none", "trainer=cpu",
            "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", f"paths.output_dir={output_dir}"]
