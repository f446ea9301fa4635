//! The argument of Envoy's `set_envoy_filter_state` foreign function, which creates a
//! well-known filter state object (here the ORIGINAL_DST cluster's destination) from a
//! string. It is a protobuf message, `envoy.source.extensions.common.wasm.SetEnvoyFilterStateArguments`
//! { string path = 1; string value = 2; LifeSpan span = 3; }; three fields are encoded by hand
//! rather than pulling a protobuf code generator into the build.

/// The foreign function's name.
pub const SET_FILTER_STATE: &str = "set_envoy_filter_state";

/// The filter state key the ORIGINAL_DST cluster reads its destination (`IP:PORT`) from.
pub const ORIGINAL_DST_KEY: &str = "envoy.network.transport_socket.original_dst_address";

/// How long the object lives (`LifeSpan`): the filter chain, i.e. this connection.
const LIFE_SPAN_FILTER_CHAIN: u64 = 0;

/// Encodes the arguments for setting `path` to `value`.
pub fn encode_set_filter_state(path: &str, value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len() + value.len() + 8);
    for (field, text) in [(1u64, path), (2, value)] {
        varint(&mut out, field << 3 | 2);
        varint(&mut out, text.len() as u64);
        out.extend_from_slice(text.as_bytes());
    }
    // proto3 leaves a field at its default out; written anyway to say what is meant.
    varint(&mut out, 3 << 3);
    varint(&mut out, LIFE_SPAN_FILTER_CHAIN);
    out
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_protobuf() {
        let got = encode_set_filter_state("k", "10.0.0.1:21");
        let mut want = vec![0x0a, 1, b'k', 0x12, 11];
        want.extend_from_slice(b"10.0.0.1:21");
        want.extend_from_slice(&[0x18, 0]);
        assert_eq!(got, want);
        // Lengths of 128 and more take two varint bytes.
        let long = "x".repeat(200);
        let got = encode_set_filter_state(&long, "");
        assert_eq!(&got[..3], &[0x0a, 0xc8, 0x01]);
    }
}
