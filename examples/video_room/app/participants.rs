//! The seed's participants ("use your customer DB in production") and the passkeys they added
//! here, as the room gate's [`ParticipantDirectory`].

use std::sync::Arc;

use keyward::store::{Key, StateStore};
use keyward::video::gate::{Contact, MemoryDirectory, ParticipantDirectory};

/// The seed's hard-coded participant list ("use your customer DB in production"): username,
/// phone (one-time codes), registered email (2-man-rule challenges). Never sent to browsers: the
/// room gate answers unknown names as it answers these, and a public list would undo that.
pub(crate) const PARTICIPANTS: [(&str, &str, &str); 3] = [
    ("blathers", "+18005559876", "blathers@example.com"),
    ("mabel", "+18005554321", "mabel@example.com"),
    ("tommy", "+18005556789", "tommy@example.com"),
];

/// The address a participant registered for 2-man-rule challenges.
pub(crate) fn registered_email(username: &str) -> Option<&'static str> {
    PARTICIPANTS
        .iter()
        .find(|(name, _, _)| *name == username)
        .map(|(_, _, email)| *email)
}

/// The seed's participants, and the passkeys they added here (user handle -> username, kept in
/// the store by registration), for the gate's passkey admission.
#[derive(Debug)]
pub(crate) struct DemoDirectory {
    pub(crate) members: MemoryDirectory,
    pub(crate) store: Arc<dyn StateStore>,
}

#[async_trait::async_trait]
impl ParticipantDirectory for DemoDirectory {
    async fn contact(&self, identity: &str) -> keyward::Result<Option<Contact>> {
        self.members.contact(identity).await
    }

    async fn identity_for_passkey(&self, user_handle: &[u8]) -> keyward::Result<Option<String>> {
        Ok(self
            .store
            .get(&handle_key(user_handle))
            .await?
            .and_then(|entry| String::from_utf8(entry.value).ok()))
    }
}

pub(crate) fn handle_key(handle: &[u8]) -> Key {
    Key::durable("video_room").part("handle").bytes(handle)
}
