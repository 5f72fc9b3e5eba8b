//! Run-time choice of AVX-512 for hot loops (the forward pass's row passes, 8-bit resampling).

/// Defines `$name`, which runs `$plain` compiled for AVX-512 when the CPU has it (found at run time,
/// as gemm picks its kernels) and as compiled otherwise. The crate is built for the baseline x86-64
/// target, whose vectors are 4 floats wide; the row passes (GELU above all) ran at that width beside
/// gemm's 16-wide kernels. Wider vectors change no value: the operations and their order are the
/// same, and Rust never fuses a multiply and an add on its own.
macro_rules! wide_or_plain {
    ($(#[$meta:meta])* $vis:vis $name:ident => $plain:ident ($($arg:ident: $ty:ty),*) $(-> $ret:ty)?) => {
        $(#[$meta])*
        #[allow(unsafe_code)] // calling a `target_feature` function, after checking the CPU has it
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw")]
                fn wide($($arg: $ty),*) $(-> $ret)? {
                    $plain($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw") {
                    // SAFETY: `wide` needs AVX-512F and BW, which the CPU was just found to have.
                    return unsafe { wide($($arg),*) };
                }
            }
            $plain($($arg),*)
        }
    };
}
