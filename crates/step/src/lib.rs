//! Tekton step driver for the railpack-prepare and railpack-build tasks.
