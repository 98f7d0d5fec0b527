//! qwen-gateway: an OpenAI-compatible gateway in front of Alibaba Cloud Model Studio (Qwen).

pub mod error;
pub mod translate;
