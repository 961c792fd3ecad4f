//! The parts of TensorFlow's `Event` protobuf that hold scalars, declared by hand
//! (no protoc). Field numbers are those of `tensorflow/core/util/event.proto`,
//! `summary.proto` and `tensor.proto`; fields left out are skipped when decoding.

/// `tensorflow.Event`. `summary` sits in a oneof upstream, which is wire-compatible
/// with an optional field.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    #[prost(int64, tag = "2")]
    pub step: i64,
    #[prost(message, optional, tag = "5")]
    pub summary: Option<Summary>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

/// `tensorflow.Summary.Value`: TF1 and PyTorch write `simple_value`; TF2's
/// `tf.summary.scalar` writes a 0-d `tensor`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryValue {
    #[prost(string, tag = "1")]
    pub tag: String,
    #[prost(float, optional, tag = "2")]
    pub simple_value: Option<f32>,
    #[prost(message, optional, tag = "8")]
    pub tensor: Option<TensorProto>,
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryMetadata {
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<PluginData>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PluginData {
    #[prost(string, tag = "1")]
    pub plugin_name: String,
}

/// `tensorflow.TensorProto`, numeric parts only.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    #[prost(bytes = "vec", tag = "4")]
    pub tensor_content: Vec<u8>,
    #[prost(float, repeated, tag = "5")]
    pub float_val: Vec<f32>,
    #[prost(double, repeated, tag = "6")]
    pub double_val: Vec<f64>,
    #[prost(int32, repeated, tag = "7")]
    pub int_val: Vec<i32>,
    #[prost(int64, repeated, tag = "10")]
    pub int64_val: Vec<i64>,
    /// Half and bfloat16 values, one per int32, in the low 16 bits.
    #[prost(int32, repeated, tag = "13")]
    pub half_val: Vec<i32>,
}

// `tensorflow.DataType` values.
const DT_FLOAT: i32 = 1;
const DT_DOUBLE: i32 = 2;
const DT_INT32: i32 = 3;
const DT_INT64: i32 = 9;
const DT_BFLOAT16: i32 = 14;
const DT_HALF: i32 = 19;

impl SummaryValue {
    /// The value when this is a scalar; histograms, images and text give `None`.
    pub fn scalar(&self) -> Option<f64> {
        match (self.simple_value, &self.tensor) {
            (Some(v), _) => Some(f64::from(v)),
            (None, Some(t)) => t.scalar(),
            (None, None) => None,
        }
    }

    pub fn plugin_name(&self) -> Option<&str> {
        let name = self
            .metadata
            .as_ref()?
            .plugin_data
            .as_ref()?
            .plugin_name
            .as_str();
        (!name.is_empty()).then_some(name)
    }
}

impl TensorProto {
    /// The single element of a one-element numeric tensor.
    pub fn scalar(&self) -> Option<f64> {
        if !self.tensor_content.is_empty() {
            return self.content_scalar();
        }
        let only = |n: usize| n == 1;
        match self.dtype {
            DT_FLOAT if only(self.float_val.len()) => self.float_val.first().map(|&v| f64::from(v)),
            DT_DOUBLE if only(self.double_val.len()) => self.double_val.first().copied(),
            DT_INT32 if only(self.int_val.len()) => self.int_val.first().map(|&v| f64::from(v)),
            DT_INT64 if only(self.int64_val.len()) => self.int64_val.first().map(|&v| v as f64),
            DT_HALF if only(self.half_val.len()) => self.half_val.first().map(|&v| half(v as u16)),
            DT_BFLOAT16 if only(self.half_val.len()) => {
                self.half_val.first().map(|&v| bfloat16(v as u16))
            }
            _ => None,
        }
    }

    fn content_scalar(&self) -> Option<f64> {
        let c = self.tensor_content.as_slice();
        match self.dtype {
            DT_FLOAT => Some(f64::from(f32::from_le_bytes(c.try_into().ok()?))),
            DT_DOUBLE => Some(f64::from_le_bytes(c.try_into().ok()?)),
            DT_INT32 => Some(f64::from(i32::from_le_bytes(c.try_into().ok()?))),
            DT_INT64 => Some(i64::from_le_bytes(c.try_into().ok()?) as f64),
            DT_HALF => Some(half(u16::from_le_bytes(c.try_into().ok()?))),
            DT_BFLOAT16 => Some(bfloat16(u16::from_le_bytes(c.try_into().ok()?))),
            _ => None,
        }
    }
}

/// IEEE 754 binary16 to f64.
fn half(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let fraction = f64::from(bits & 0x3ff);
    sign * match exponent {
        0 => fraction * 2f64.powi(-24),
        31 if fraction == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + fraction / 1024.0) * 2f64.powi(e - 15),
    }
}

fn bfloat16(bits: u16) -> f64 {
    f64::from(f32::from_bits(u32::from(bits) << 16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_values() {
        assert_eq!(half(0x3c00), 1.0);
        assert_eq!(half(0xc000), -2.0);
        assert_eq!(half(0x3555), 0.333251953125);
        assert_eq!(half(0x0001), 2f64.powi(-24));
        assert_eq!(half(0x7c00), f64::INFINITY);
        assert!(half(0x7e00).is_nan());
        assert_eq!(bfloat16(0x3f80), 1.0);
    }
}
