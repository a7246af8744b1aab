//! One dispatcher from the device a Plan (or a command's `--backend`) names
//! to a Burn backend, used by every entry point: training, evaluation, a
//! sweep's test evaluation, generation, embeddings, classification and
//! export. Work is written once, generic over the backend
//! ([`OnBackend`]); training runs on `B`, inference on `B::InnerBackend`.

use burn::backend::Autodiff;
pub use ft_plan::Device;

use crate::kernels::AutodiffKernels;

/// Work that runs on whichever backend the device names.
pub trait OnBackend {
    type Output;
    fn run<B: AutodiffKernels>(self, device: &B::Device) -> Self::Output;
}

/// A device this build of ft cannot run on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    #[error(
        "the recipe asks for `backend = cuda`, but this ft was built without CUDA: \
         rebuild with `cargo build --release --features cuda`"
    )]
    CudaNotBuilt,
}

/// Runs `work` on the backend of `device`.
pub fn dispatch<W: OnBackend>(device: Device, work: W) -> Result<W::Output, BackendError> {
    match device {
        Device::Cpu => Ok(work.run::<Autodiff<crate::CpuBackend>>(&Default::default())),
        #[cfg(feature = "cuda")]
        Device::Cuda => Ok(work.run::<Autodiff<burn::backend::Cuda>>(&Default::default())),
        #[cfg(not(feature = "cuda"))]
        Device::Cuda => {
            let _ = work;
            Err(BackendError::CudaNotBuilt)
        }
    }
}

/// The name a device has in recipes and on the command line.
pub fn device_name(device: Device) -> &'static str {
    match device {
        Device::Cpu => "cpu",
        Device::Cuda => "cuda",
    }
}
