//! Proptest strategies: schemas, conforming profiles, valid and invalid patches.
