//! Bottleneck adapters (Houlsby et al. 2019; Pfeiffer et al. 2020):
//! `x + up(act(down(x)))` on a sublayer's output, before its residual.
//! Houlsby places one after attention and one after the MLP, Pfeiffer one
//! after the MLP only. The up-projection starts at zero, so a new adapter
//! is the identity and the model starts as the pretrained one.
//!
//! PEFT has no bottleneck type: these are saved in ft's own format
//! (docs/adapters.md).

use crate::kernels::Kernels;
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::{gelu, relu, silu};
use burn::tensor::{Tensor, TensorData};
use ft_plan::method::Activation;

use super::rng;

#[derive(Module, Debug)]
pub struct Bottleneck<B: Kernels> {
    /// `[hidden, size]`
    pub down: Linear<B>,
    /// `[size, hidden]`, zero at init.
    pub up: Linear<B>,
    #[module(skip)]
    pub activation: Activation,
}

impl<B: Kernels> Bottleneck<B> {
    /// `stream` distinguishes the adapters of one model (layer, position).
    pub fn new(
        hidden: usize,
        size: usize,
        activation: Activation,
        seed: u64,
        stream: u64,
        device: &B::Device,
    ) -> Self {
        // Down: PyTorch's default Kaiming-uniform bound 1/√in; bias zero.
        let key = rng::stream_key(&[rng::domain::ADAPTER, seed, stream]);
        let w = rng::uniform_vec(key, hidden * size, 1.0 / (hidden as f32).sqrt());
        let down = Linear {
            weight: Param::from_tensor(Tensor::from_data(
                TensorData::new(w, [hidden, size]),
                device,
            )),
            bias: Some(Param::from_tensor(Tensor::zeros([size], device))),
        };
        let up = Linear {
            weight: Param::from_tensor(Tensor::zeros([size, hidden], device)),
            bias: Some(Param::from_tensor(Tensor::zeros([hidden], device))),
        };
        Bottleneck {
            down,
            up,
            activation,
        }
    }

    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let h = self.down.forward(x.clone());
        let h = match self.activation {
            Activation::Relu => relu(h),
            Activation::Gelu => gelu(h),
            Activation::Silu => silu(h),
        };
        x + self.up.forward(h)
    }
}

/// Applies an optional adapter.
pub fn adapt<B: Kernels>(adapter: &Option<Bottleneck<B>>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    match adapter {
        Some(a) => a.forward(x),
        None => x,
    }
}
