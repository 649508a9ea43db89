"""JAX-executed implementations of the torch.func transforms."""
