use super::WindowSizeRef;
use super::receive_window::{ChannelReceiver, ChannelSender, ReceiveWindow, channel_queue};

/// A handle to the [`super::Channel`]'s to be able to transmit messages
/// to it and update it's `window_size`.
#[derive(Debug)]
pub struct ChannelRef {
    pub(super) sender: ChannelSender,
    pub(super) window_size: WindowSizeRef,
}

impl ChannelRef {
    /// A channel's session entry and the receiver for its [`super::ChannelReadHalf`].
    /// The window we may send in starts at 0, until the open is confirmed.
    pub(crate) fn channel() -> (Self, ChannelReceiver) {
        Self::with_send_window(0)
    }

    /// Like [`Self::channel`], with a send window known from the start.
    pub(crate) fn with_send_window(window_size: u32) -> (Self, ChannelReceiver) {
        let (sender, receiver) = channel_queue();
        (
            Self {
                sender,
                window_size: WindowSizeRef::new(window_size),
            },
            receiver,
        )
    }

    pub(crate) fn window_size(&self) -> &WindowSizeRef {
        &self.window_size
    }

    /// Receive-side flow control of this channel.
    pub(crate) fn receive_window(&self) -> &ReceiveWindow {
        &self.sender.window
    }
}

impl std::ops::Deref for ChannelRef {
    type Target = ChannelSender;

    fn deref(&self) -> &Self::Target {
        &self.sender
    }
}
