//! The runtime's tests on tiny random models and on the real ones, in one
//! test binary: each of these modules instantiates the models' generic code
//! for its backends, and as separate binaries they cost a build of that code
//! each. (`bf16_products` stays apart: the packed-weight registry it fills
//! is process-wide.)

mod assets;
mod peft_common;

mod generate_batch;
mod method_shapes;
mod packing;
mod parity;
mod peft_files;
mod peft_interop;
mod peft_training;
mod recompute;
mod tiny_models;
mod train_optim;
