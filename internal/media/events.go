package media

import (
	"time"

	"github.com/abacusbilling/abacus/internal/outbox"
)

// UploadedEvent is the payload of media.uploaded.
type UploadedEvent struct {
	ID             string    `json:"id"`
	OwnerID        string    `json:"owner_id,omitempty"`
	ConversationID string    `json:"conversation_id,omitempty"`
	Format         string    `json:"format" enum:"jpeg,png,gif,webp"`
	Width          int       `json:"width"`
	Height         int       `json:"height"`
	Bytes          int64     `json:"bytes" doc:"size of the upload"`
	CreatedAt      time.Time `json:"created_at"`
}

// DeletedEvent is the payload of media.deleted.
type DeletedEvent struct {
	ID             string    `json:"id"`
	OwnerID        string    `json:"owner_id,omitempty"`
	ConversationID string    `json:"conversation_id,omitempty"`
	Reason         string    `json:"reason" enum:"api,owner_deleted,message_deleted"`
	EraseAt        time.Time `json:"erase_at" doc:"when its bytes are erased (the tenant's retention window)"`
	DeletedAt      time.Time `json:"deleted_at"`
}

// Domain events of the media module.
var (
	Uploaded = outbox.Define[UploadedEvent]("media.uploaded", 1, "media",
		"An image was uploaded (its variants are made off the request path).")
	Deleted = outbox.Define[DeletedEvent]("media.deleted", 1, "media",
		"An image was deleted, or its owner was: it is hidden at once and its bytes are erased after the retention window.")
)
