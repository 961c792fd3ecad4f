//! Where training runs: burn devices chosen at run time.

use std::fmt;
use std::str::FromStr;

use burn::tensor::{Device, DeviceKind};
use serde::{Deserialize, Serialize};

pub use crate::manifest::{Adapter, AdapterKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceChoice {
    /// The faster CPU backend, by measurement (`dropscope bench train`): flex.
    Cpu,
    Flex,
    /// Deprecated in burn 0.22 in favour of flex; kept for comparison.
    Ndarray,
    /// A GPU through wgpu (`gpu` is the same); on a machine without one, a software
    /// adapter (slow: the run says so).
    Wgpu,
}

impl DeviceChoice {
    /// `cpu` names a backend by measurement: flex was as fast as or faster than ndarray at
    /// every benchmarked size (see the README's benchmark table).
    pub fn resolve(self) -> DeviceChoice {
        match self {
            DeviceChoice::Cpu => DeviceChoice::Flex,
            other => other,
        }
    }

    /// The plain (inference) device; training adds `.autodiff()`.
    pub fn device(self) -> Device {
        match self.resolve() {
            DeviceChoice::Cpu | DeviceChoice::Flex => Device::flex(),
            #[allow(deprecated)]
            DeviceChoice::Ndarray => Device::ndarray(),
            DeviceChoice::Wgpu => Device::wgpu(DeviceKind::DefaultDevice),
        }
    }

    pub fn is_cpu(self) -> bool {
        !matches!(self, DeviceChoice::Wgpu)
    }

    /// What `device` (this choice's) really runs on. For wgpu this opens the adapter and
    /// reads its identity: a software rasterizer (Mesa's llvmpipe, SwiftShader) reports no
    /// physical card, and is the CPU pretending to be a GPU, far slower than `cpu`.
    pub fn adapter(self, device: &Device) -> Adapter {
        match self.resolve() {
            DeviceChoice::Wgpu => match device.identity() {
                Some(id) if id.physical.is_some() => Adapter {
                    name: id.name,
                    kind: AdapterKind::Gpu,
                },
                Some(id) => Adapter {
                    name: id.name,
                    kind: AdapterKind::SoftwareGpu,
                },
                None => Adapter {
                    name: "unknown wgpu adapter".into(),
                    kind: AdapterKind::SoftwareGpu,
                },
            },
            other => Adapter {
                name: format!("CPU ({other})"),
                kind: AdapterKind::Cpu,
            },
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceChoice::Cpu => "cpu",
            DeviceChoice::Flex => "flex",
            DeviceChoice::Ndarray => "ndarray",
            DeviceChoice::Wgpu => "wgpu",
        })
    }
}

impl FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(DeviceChoice::Cpu),
            "flex" => Ok(DeviceChoice::Flex),
            "ndarray" => Ok(DeviceChoice::Ndarray),
            "wgpu" | "gpu" => Ok(DeviceChoice::Wgpu),
            other => Err(format!(
                "unknown device '{other}' (expected cpu, flex, ndarray or wgpu)"
            )),
        }
    }
}
