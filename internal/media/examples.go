package media

import "time"

// Examples are the media module's example values for the API reference.
func Examples() []any {
	at := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	base := "/api/v1/media/med_01JE5V7M0000000000000000/content?exp=1764585000&sig=3q2-7w1F0hXo9Ckq0rM2Zg&t=ten_01JE5V7M0000000000000000&u=eu_01JE5V7M0000000000000000&variant="
	return []any{
		Image{ID: "med_01JE5V7M0000000000000000", ContentType: "image/jpeg", Format: "jpeg", Width: 4000, Height: 3000, Bytes: 3_481_222,
			Status: "ready", OwnerID: "eu_01JE5V7M0000000000000000", ConversationID: "conv_01JE5V7M0000000000000000",
			Variants:  map[string]string{Thumbnail: base + Thumbnail, Medium: base + Medium, Large: base + Large, Original: base + Original},
			ExpiresAt: at.Add(time.Hour), CreatedAt: at},
		MediaSettings{Limits: DefaultLimits, RetentionHours: 24},
	}
}
