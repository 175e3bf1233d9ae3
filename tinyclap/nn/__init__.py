"""Building blocks shared by teachers and students: projection, latent slicing, complexity."""
