package media

// stripJPEG returns the JPEG b without its metadata: every APPn segment
// (EXIF with GPS, XMP, ICC profiles, JFIF thumbnails, maker notes…)
// except Adobe's APP14, which carries only the colour transform decoders
// need; comments; and whatever follows the end-of-image marker. The
// compressed image data is copied as it is: no decoding, no loss, a
// fraction of the cost of encoding 12 megapixels again. ok is false for a
// structure it does not expect; the caller then re-encodes the pixels.
func stripJPEG(b []byte) (out []byte, ok bool) {
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return nil, false
	}
	out = make([]byte, 0, len(b))
	out = append(out, 0xFF, 0xD8)
	for p := 2; p < len(b); {
		if b[p] != 0xFF {
			return nil, false
		}
		for p < len(b) && b[p] == 0xFF { // fill bytes
			p++
		}
		if p >= len(b) {
			return nil, false
		}
		m := b[p]
		p++
		switch {
		case m == 0xD9: // end of image: drop anything after it
			return append(out, 0xFF, 0xD9), true
		case m >= 0xD0 && m <= 0xD7 || m == 0x01: // no length
			out = append(out, 0xFF, m)
			continue
		}
		if p+2 > len(b) {
			return nil, false
		}
		n := int(b[p])<<8 | int(b[p+1])
		if n < 2 || p+n > len(b) {
			return nil, false
		}
		if keepSegment(m, b[p:p+n]) {
			out = append(out, 0xFF, m)
			out = append(out, b[p:p+n]...)
		}
		p += n
		if m == 0xDA { // start of scan: entropy-coded data up to the next marker
			start := p
			for p+1 < len(b) && (b[p] != 0xFF || b[p+1] == 0x00 || b[p+1] >= 0xD0 && b[p+1] <= 0xD7) {
				p++
			}
			if p+1 >= len(b) {
				return nil, false
			}
			out = append(out, b[start:p]...)
		}
	}
	return nil, false
}

// keepSegment tells the segments a decoder needs from metadata: APPn
// (0xE0–0xEF) and comments (0xFE) go, but Adobe's APP14.
func keepSegment(marker byte, seg []byte) bool {
	switch {
	case marker == 0xFE:
		return false
	case marker == 0xEE:
		return len(seg) >= 7 && string(seg[2:7]) == "Adobe"
	case marker >= 0xE0 && marker <= 0xEF:
		return false
	}
	return true
}
