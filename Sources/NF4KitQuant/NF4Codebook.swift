import NF4KitCore

/// The 4-bit data type of a bitsandbytes weight: NormalFloat4 or bitsandbytes' FP4.
public enum QuantType: String, Sendable, Hashable, CaseIterable, Codable {
    /// NormalFloat4 (QLoRA): 16 quantiles of a normal distribution, scaled to [-1, 1].
    case nf4
    /// bitsandbytes' 4-bit float: sign bit plus a 3-bit magnitude pattern (not sorted).
    case fp4
}

/// Which implementation's rounding rules the quantizer reproduces.
///
/// The two differ only in corner cases (all-zero blocks, NaN/Inf, FP4 values that round to zero, some FP4
/// thresholds, the 8-bit double-quantization code); see `docs/nf4-layout.md`.
public enum QuantizationProfile: String, Sendable, Hashable, CaseIterable, Codable {
    /// bitsandbytes 0.50.x on CPU: reproduces the project's golden files byte for byte.
    case cpu
    /// The CUDA kernels' rules (inferred from their source; no GPU was available to verify).
    case cuda
}

/// The fixed code tables of bitsandbytes 4-bit quantization and its double quantization.
///
/// Every table is a bit-exact float32 copy of what bitsandbytes writes to `weight.quant_map` and
/// `weight.nested_quant_map` (spec section 1); none is recomputed at run time.
public enum NF4Codebook {
    /// The NF4 values by code (16 entries, ascending, both ends exactly ±1).
    public static let nf4: [Float] = nf4Bits.map(Float.init(bitPattern:))

    /// The FP4 values by code (16 entries; code 8 is +0.0, not -0.0).
    public static let fp4: [Float] = fp4Bits.map(Float.init(bitPattern:))

    /// The 256-entry 8-bit "dynamic" map used for double quantization, ascending (index 127 = 0, 255 = 1).
    public static let dynamic8Bit: [Float] = dynamicBits.map(Float.init(bitPattern:))

    /// The 16-entry table of `quantType`.
    public static func table(for quantType: QuantType) -> [Float] {
        switch quantType {
        case .nf4: nf4
        case .fp4: fp4
        }
    }

    static let nf4Bits: [UInt32] = [
        0xBF80_0000, 0xBF32_39B1, 0xBF06_6B30, 0xBECA_32A0, 0xBE91_A24D, 0xBE3D_353F, 0xBDBA_7871, 0x0000_0000,
        0x3DA2_FAFF, 0x3E24_CAE3, 0x3E7C_04DD, 0x3EAD_033A, 0x3EE1_A4B8, 0x3F10_07AB, 0x3F39_13B3, 0x3F80_0000,
    ]

    static let fp4Bits: [UInt32] = [
        0x0000_0000, 0x3BAA_AAAB, 0x3F2A_AAAB, 0x3F80_0000, 0x3EAA_AAAB, 0x3F00_0000, 0x3E2A_AAAB, 0x3E80_0000,
        0x0000_0000, 0xBBAA_AAAB, 0xBF2A_AAAB, 0xBF80_0000, 0xBEAA_AAAB, 0xBF00_0000, 0xBE2A_AAAB, 0xBE80_0000,
    ]

    static let dynamicBits: [UInt32] = [
        0xBF7E_3333, 0xBF7A_999A, 0xBF77_0000, 0xBF73_6666, 0xBF6F_CCCD, 0xBF6C_3333, 0xBF68_999A, 0xBF65_0000,
        0xBF61_6666, 0xBF5D_CCCD, 0xBF5A_3333, 0xBF56_999A, 0xBF53_0000, 0xBF4F_6666, 0xBF4B_CCCD, 0xBF48_3333,
        0xBF44_999A, 0xBF41_0000, 0xBF3D_6666, 0xBF39_CCCD, 0xBF36_3334, 0xBF32_999A, 0xBF2F_0000, 0xBF2B_6666,
        0xBF27_CCCD, 0xBF24_3334, 0xBF20_999A, 0xBF1D_0000, 0xBF19_6666, 0xBF15_CCCD, 0xBF12_3334, 0xBF0E_999A,
        0xBF0B_0000, 0xBF07_6666, 0xBF03_CCCC, 0xBF00_3333, 0xBEF9_3332, 0xBEF2_0000, 0xBEEA_CCCC, 0xBEE3_999A,
        0xBEDC_6666, 0xBED5_3333, 0xBECE_0000, 0xBEC6_CCCC, 0xBEBF_999A, 0xBEB8_6666, 0xBEB1_3333, 0xBEAA_0000,
        0xBEA2_CCCC, 0xBE9B_999A, 0xBE94_6666, 0xBE8D_3334, 0xBE86_0000, 0xBE7D_9999, 0xBE6F_3333, 0xBE60_CCCD,
        0xBE52_6666, 0xBE44_0000, 0xBE35_999A, 0xBE27_3333, 0xBE18_CCCD, 0xBE0A_6666, 0xBDF8_0000, 0xBDDB_3334,
        0xBDC9_EB85, 0xBDC4_28F7, 0xBDBE_6667, 0xBDB8_A3D7, 0xBDB2_E148, 0xBDAD_1EB8, 0xBDA7_5C2A, 0xBDA1_999A,
        0xBD9B_D70A, 0xBD96_147B, 0xBD90_51EB, 0xBD8A_8F5D, 0xBD84_CCCD, 0xBD7E_147B, 0xBD72_8F5D, 0xBD67_0A3D,
        0xBD5B_851F, 0xBD50_0000, 0xBD44_7AE1, 0xBD38_F5C3, 0xBD2D_70A3, 0xBD21_EB85, 0xBD16_6667, 0xBD0A_E148,
        0xBCFE_B852, 0xBCE7_AE15, 0xBCD0_A3D7, 0xBCB9_999A, 0xBCA2_8F5D, 0xBC8B_851F, 0xBC68_F5C3, 0xBC3A_E148,
        0xBC1F_3B64, 0xBC16_0418, 0xBC0C_CCCD, 0xBC03_9581, 0xBBF4_BC6A, 0xBBE2_4DD3, 0xBBCF_DF3B, 0xBBBD_70A4,
        0xBBAB_020D, 0xBB98_9374, 0xBB86_24DD, 0xBB67_6C8A, 0xBB42_8F5C, 0xBB1D_B22D, 0xBAF1_A9FC, 0xBAA7_EF9D,
        0xBA77_65FF, 0xBA59_E83E, 0xBA3C_6A80, 0xBA1E_ECC1, 0xBA01_6F01, 0xB9C7_E283, 0xB98C_E705, 0xB923_D70B,
        0xB8BA_1F4B, 0xB88A_EFB3, 0xB837_8034, 0xB7B2_4206, 0xB702_05FF, 0xB65A_1A94, 0xB513_A3B7, 0x0000_0000,
        0x3513_A3B7, 0x365A_1A94, 0x3702_05FF, 0x37B2_4206, 0x3837_8034, 0x388A_EFB3, 0x38BA_1F4B, 0x3923_D70B,
        0x398C_E705, 0x39C7_E283, 0x3A01_6F01, 0x3A1E_ECC1, 0x3A3C_6A80, 0x3A59_E83E, 0x3A77_65FF, 0x3AA7_EF9D,
        0x3AF1_A9FC, 0x3B1D_B22D, 0x3B42_8F5C, 0x3B67_6C8A, 0x3B86_24DD, 0x3B98_9374, 0x3BAB_020D, 0x3BBD_70A4,
        0x3BCF_DF3B, 0x3BE2_4DD3, 0x3BF4_BC6A, 0x3C03_9581, 0x3C0C_CCCD, 0x3C16_0418, 0x3C1F_3B64, 0x3C3A_E148,
        0x3C68_F5C3, 0x3C8B_851F, 0x3CA2_8F5D, 0x3CB9_999A, 0x3CD0_A3D7, 0x3CE7_AE15, 0x3CFE_B852, 0x3D0A_E148,
        0x3D16_6667, 0x3D21_EB85, 0x3D2D_70A3, 0x3D38_F5C3, 0x3D44_7AE1, 0x3D50_0000, 0x3D5B_851F, 0x3D67_0A3D,
        0x3D72_8F5D, 0x3D7E_147B, 0x3D84_CCCD, 0x3D8A_8F5D, 0x3D90_51EB, 0x3D96_147B, 0x3D9B_D70A, 0x3DA1_999A,
        0x3DA7_5C2A, 0x3DAD_1EB8, 0x3DB2_E148, 0x3DB8_A3D7, 0x3DBE_6667, 0x3DC4_28F7, 0x3DC9_EB85, 0x3DDB_3334,
        0x3DF8_0000, 0x3E0A_6666, 0x3E18_CCCD, 0x3E27_3333, 0x3E35_999A, 0x3E44_0000, 0x3E52_6666, 0x3E60_CCCD,
        0x3E6F_3333, 0x3E7D_9999, 0x3E86_0000, 0x3E8D_3334, 0x3E94_6666, 0x3E9B_999A, 0x3EA2_CCCC, 0x3EAA_0000,
        0x3EB1_3333, 0x3EB8_6666, 0x3EBF_999A, 0x3EC6_CCCC, 0x3ECE_0000, 0x3ED5_3333, 0x3EDC_6666, 0x3EE3_999A,
        0x3EEA_CCCC, 0x3EF2_0000, 0x3EF9_3332, 0x3F00_3333, 0x3F03_CCCC, 0x3F07_6666, 0x3F0B_0000, 0x3F0E_999A,
        0x3F12_3334, 0x3F15_CCCD, 0x3F19_6666, 0x3F1D_0000, 0x3F20_999A, 0x3F24_3334, 0x3F27_CCCD, 0x3F2B_6666,
        0x3F2F_0000, 0x3F32_999A, 0x3F36_3334, 0x3F39_CCCD, 0x3F3D_6666, 0x3F41_0000, 0x3F44_999A, 0x3F48_3333,
        0x3F4B_CCCD, 0x3F4F_6666, 0x3F53_0000, 0x3F56_999A, 0x3F5A_3333, 0x3F5D_CCCD, 0x3F61_6666, 0x3F65_0000,
        0x3F68_999A, 0x3F6C_3333, 0x3F6F_CCCD, 0x3F73_6666, 0x3F77_0000, 0x3F7A_999A, 0x3F7E_3333, 0x3F80_0000,
    ]
}
