//! Provider clients: one trait, shared HTTP plumbing, one module per provider.
