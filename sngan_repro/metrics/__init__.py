"""Quality metrics: Inception (and digits-classifier) IS/FID, Xiang & Li's reconstruction loss."""
