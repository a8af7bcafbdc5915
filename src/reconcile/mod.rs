//! The generic external-resource reconciler and one adapter per kind.
