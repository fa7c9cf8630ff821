package media

import (
	"bytes"
	"encoding/binary"
	"image"
)

// orientation returns the EXIF orientation (1 to 8) an image carries: in
// a JPEG's APP1 segment, a PNG's eXIf chunk or a WebP's EXIF chunk; 1
// when there is none or it cannot be read.
func orientation(f Format, b []byte) int {
	var tiff []byte
	switch f {
	case JPEG:
		tiff = jpegEXIF(b)
	case PNG:
		tiff = pngChunk(b, "eXIf")
	case WebP:
		tiff = webpChunk(b, "EXIF")
	}
	tiff = bytes.TrimPrefix(tiff, []byte("Exif\x00\x00"))
	if o := tiffOrientation(tiff); o >= 1 && o <= 8 {
		return o
	}
	return 1
}

// jpegEXIF returns the TIFF data of a JPEG's EXIF APP1 segment.
func jpegEXIF(b []byte) []byte {
	for p := 2; p+4 <= len(b); {
		if b[p] != 0xFF {
			return nil
		}
		m := b[p+1]
		if m == 0xFF { // fill byte
			p++
			continue
		}
		if m == 0xDA || m == 0xD9 { // start of scan, end of image: no more metadata
			return nil
		}
		n := int(binary.BigEndian.Uint16(b[p+2 : p+4]))
		if n < 2 || p+2+n > len(b) {
			return nil
		}
		seg := b[p+4 : p+2+n]
		if m == 0xE1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
			return seg[6:]
		}
		p += 2 + n
	}
	return nil
}

// pngChunk returns the data of a PNG's first chunk of type id.
func pngChunk(b []byte, id string) []byte {
	for p := 8; p+12 <= len(b); {
		n := int(binary.BigEndian.Uint32(b[p : p+4]))
		if n < 0 || p+12+n > len(b) {
			return nil
		}
		if string(b[p+4:p+8]) == id {
			return b[p+8 : p+8+n]
		}
		p += 12 + n
	}
	return nil
}

// webpChunk returns the data of a WebP's first chunk of type id.
func webpChunk(b []byte, id string) []byte {
	for p := 12; p+8 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[p+4 : p+8]))
		if n < 0 || p+8+n > len(b) {
			return nil
		}
		if string(b[p:p+4]) == id {
			return b[p+8 : p+8+n]
		}
		p += 8 + n + n&1
	}
	return nil
}

// tiffOrientation reads tag 0x0112 of IFD0 of TIFF data; 0 if absent.
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 0
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 0
	}
	if bo.Uint16(t[2:4]) != 42 {
		return 0
	}
	ifd := int(bo.Uint32(t[4:8]))
	if ifd < 8 || ifd+2 > len(t) {
		return 0
	}
	n := int(bo.Uint16(t[ifd : ifd+2]))
	for i := range n {
		e := ifd + 2 + 12*i
		if e+12 > len(t) {
			return 0
		}
		if bo.Uint16(t[e:e+2]) == 0x0112 && bo.Uint16(t[e+2:e+4]) == 3 { // SHORT
			return int(bo.Uint16(t[e+8 : e+10]))
		}
	}
	return 0
}

// orient returns m transformed so that it displays upright for EXIF
// orientation o (1: as stored; 2: mirrored; 3: rotated 180°; 4: flipped;
// 5: transposed; 6: rotated 90° clockwise; 7: transversed; 8: rotated 90°
// counter-clockwise).
func orient(m *image.RGBA, o int) *image.RGBA {
	if o <= 1 || o > 8 {
		return m
	}
	w, h := m.Rect.Dx(), m.Rect.Dy()
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for y := range h {
		row := m.Pix[y*m.Stride : y*m.Stride+4*w]
		for x := range w {
			var dx, dy int
			switch o {
			case 2:
				dx, dy = w-1-x, y
			case 3:
				dx, dy = w-1-x, h-1-y
			case 4:
				dx, dy = x, h-1-y
			case 5:
				dx, dy = y, x
			case 6:
				dx, dy = h-1-y, x
			case 7:
				dx, dy = h-1-y, w-1-x
			case 8:
				dx, dy = y, w-1-x
			}
			copy(dst.Pix[dy*dst.Stride+4*dx:dy*dst.Stride+4*dx+4], row[4*x:4*x+4])
		}
	}
	return dst
}
