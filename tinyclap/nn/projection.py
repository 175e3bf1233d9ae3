"""The CLAP projection head shared by teachers and students.

Microsoft CLAP (and tinyCLAP) map encoder features into the shared latent space
with ``Linear(d_in, d) -> GELU -> Linear(d, d) -> Dropout -> residual add ->
LayerNorm(d)``; both linear layers have no bias. Parameter names match
msclap's so its checkpoints load unchanged.
"""

import torch
import torch.nn.functional as F


class Projection(torch.nn.Module):
    """Project ``[B, d_in]`` features to ``[B, d_out]`` CLAP embeddings.

    Parameters
    ----------
    d_in : int
        Input feature size.
    d_out : int
        Latent (embedding) size.
    dropout : float
        Dropout on the second branch, as in msclap (0.5).

    Example
    -------
    >>> Projection(8, 4)(torch.randn(2, 8)).shape
    torch.Size([2, 4])
    """

    def __init__(self, d_in, d_out, dropout=0.5):
        super().__init__()
        self.linear1 = torch.nn.Linear(d_in, d_out, bias=False)
        self.linear2 = torch.nn.Linear(d_out, d_out, bias=False)
        self.layer_norm = torch.nn.LayerNorm(d_out)
        self.drop = torch.nn.Dropout(dropout)

    def forward(self, x):
        """Return the (un-normalised) embeddings of ``x``."""
        embed1 = self.linear1(x)
        embed2 = self.drop(self.linear2(F.gelu(embed1)))
        return self.layer_norm(embed1 + embed2)
