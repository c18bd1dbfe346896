//! Lower-case hexadecimal text for digests, key ids and session ids.

/// `bytes` as lower-case hex, two characters per byte.
pub fn lower_hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        for nibble in [byte >> 4, byte & 0x0f] {
            // A nibble is always a base-16 digit.
            text.extend(char::from_digit(u32::from(nibble), 16));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_two_lower_case_digits_per_byte() {
        assert_eq!(lower_hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(lower_hex(&[]), "");
    }
}
