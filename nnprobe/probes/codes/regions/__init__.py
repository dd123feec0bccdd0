"""Linear regions of a ReLU network, exactly: the piecewise-affine structure behind the activation codes.

Hanin & Rolnick, "Complexity of linear regions in deep networks" (ICML 2019) and "Deep ReLU networks have
surprisingly few activation patterns" (NeurIPS 2019); Humayun et al., "SplineCam: exact visualization and
characterization of deep network geometry and decision boundaries" (CVPR 2023) for exact 2-D partitions.

* segment walks: the exact breakpoints of the activation pattern along segments, region densities;
* distances from a point to the boundary of its linear region, and the authors' sampled diameter;
* the exact partition of a 2-D slice of input space, with the decision boundary's linear pieces.
"""
