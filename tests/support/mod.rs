pub mod fake_gpu;
