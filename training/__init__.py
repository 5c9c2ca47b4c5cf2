"""Everything only learning needs: datasets, discriminators, losses, the perceptual network,
the training stages and evaluation. Depends on ``backend``; ``backend`` never imports it."""
