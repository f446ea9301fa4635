//! Receive-side flow control of one channel.
//!
//! Incoming channel messages go into a queue that the session loop never waits on; the
//! SSH window is what bounds it. The window is re-opened (`CHANNEL_WINDOW_ADJUST`) as the
//! application *takes* data out of the queue, not as data arrives, so a channel nobody
//! reads stops its peer after one window, and only that channel stops.
//!
//! When to announce follows OpenSSH (`channel_check_window` in `channels.c`): once the
//! consumed-but-unannounced bytes exceed half the window or three maximum packets,
//! whichever comes first. Data for a channel whose reader is gone counts as consumed at
//! once, so that a dropped [`Channel`](super::Channel) never holds its peer back.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};

use tokio::sync::mpsc::error::SendError;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::{ChannelId, ChannelMsg};

/// State shared by a channel's session entry ([`ChannelRef`](super::ChannelRef)) and its
/// reader ([`ChannelReceiver`]).
#[derive(Debug, Default)]
pub(crate) struct ReceiveWindow {
    /// Bytes taken by the application (or dropped with its reader), not announced yet.
    consumed: AtomicU32,
    /// `consumed` at which the reader wakes the session; 0 (never) until registered.
    threshold: AtomicU32,
    /// Where the reader sends the channel's id when `consumed` reaches `threshold`.
    wake: OnceLock<(ChannelId, UnboundedSender<ChannelId>)>,
    /// Whether a `WindowAdjusted` notice is queued and unread (they are coalesced).
    notice_queued: AtomicBool,
    /// The session's own bookkeeping: the window this channel may have outstanding.
    max: AtomicU32,
    /// The session's own bookkeeping: bytes the peer sent beyond the window, to be
    /// deducted from the next announcements.
    excess: AtomicU32,
}

impl ReceiveWindow {
    /// Called by the session when it registers the channel: from now on, consumption
    /// wakes it through `wake`.
    pub(crate) fn register(
        &self,
        id: ChannelId,
        wake: UnboundedSender<ChannelId>,
        window: u32,
        max_packet: u32,
    ) {
        let _ = self.wake.set((id, wake));
        self.set_max(window, max_packet);
    }

    /// Sets the window size the channel may have outstanding, and the announcement
    /// threshold that goes with it.
    pub(crate) fn set_max(&self, window: u32, max_packet: u32) {
        self.max.store(window, Ordering::Relaxed);
        let threshold = (window / 2).min(max_packet.saturating_mul(3)).max(1);
        self.threshold.store(threshold, Ordering::Release);
    }

    pub(crate) fn max(&self) -> u32 {
        self.max.load(Ordering::Relaxed)
    }

    /// Counts `n` bytes as consumed; wakes the session when the threshold is crossed.
    pub(crate) fn consume(&self, n: usize) {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        if n == 0 {
            return;
        }
        let before = self.consumed.fetch_add(n, Ordering::AcqRel);
        let threshold = self.threshold.load(Ordering::Acquire);
        if before < threshold
            && before.saturating_add(n) >= threshold
            && let Some((id, wake)) = self.wake.get()
        {
            let _ = wake.send(*id);
        }
    }

    /// Takes the consumed bytes for an announcement.
    pub(crate) fn take_consumed(&self) -> u32 {
        self.consumed.swap(0, Ordering::AcqRel)
    }

    /// Records `over` bytes received beyond the window; returns the total not yet
    /// deducted.
    pub(crate) fn add_excess(&self, over: u32) -> u32 {
        let total = self.excess.load(Ordering::Relaxed).saturating_add(over);
        self.excess.store(total, Ordering::Relaxed);
        total
    }

    /// Deducts received excess from an announcement of `amount` bytes.
    pub(crate) fn deduct_excess(&self, amount: u32) -> u32 {
        let excess = self.excess.load(Ordering::Relaxed);
        let deducted = excess.min(amount);
        self.excess.store(excess - deducted, Ordering::Relaxed);
        amount - deducted
    }

    fn taken(&self, msg: &ChannelMsg) {
        match msg {
            ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. } => {
                self.consume(data.len())
            }
            ChannelMsg::WindowAdjusted { .. } => self.notice_queued.store(false, Ordering::Relaxed),
            _ => {}
        }
    }
}

/// The session's end of a channel's message queue: sending never waits.
#[derive(Debug)]
pub struct ChannelSender {
    sender: UnboundedSender<ChannelMsg>,
    pub(crate) window: Arc<ReceiveWindow>,
}

impl ChannelSender {
    /// Queues `msg` for the application. Never waits (the window bounds the queue); data
    /// for a reader that is gone counts as consumed. `async` only to keep the call sites
    /// of the former bounded queue.
    pub(crate) async fn send(&self, msg: ChannelMsg) -> Result<(), SendError<ChannelMsg>> {
        self.send_now(msg)
    }

    /// Queues `msg` like [`Self::send`]. `WindowAdjusted` notices are informational and
    /// coalesced: one unread notice at a time.
    pub(crate) fn try_send(&self, msg: ChannelMsg) -> Result<(), SendError<ChannelMsg>> {
        if matches!(msg, ChannelMsg::WindowAdjusted { .. })
            && self.window.notice_queued.swap(true, Ordering::Relaxed)
        {
            return Ok(());
        }
        self.send_now(msg)
    }

    fn send_now(&self, msg: ChannelMsg) -> Result<(), SendError<ChannelMsg>> {
        self.sender.send(msg).inspect_err(|SendError(msg)| {
            if let ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. } = msg {
                self.window.consume(data.len());
            }
        })
    }
}

/// The application's end of a channel's message queue: taking data out of it is what
/// re-opens the window.
#[derive(Debug)]
pub(crate) struct ChannelReceiver {
    receiver: UnboundedReceiver<ChannelMsg>,
    window: Arc<ReceiveWindow>,
}

impl ChannelReceiver {
    /// Next message; `None` once the session has dropped the channel.
    pub(crate) async fn recv(&mut self) -> Option<ChannelMsg> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<ChannelMsg>> {
        let msg = ready!(self.receiver.poll_recv(cx));
        if let Some(msg) = &msg {
            self.window.taken(msg);
        }
        Poll::Ready(msg)
    }

    /// Takes no more messages; those already queued can still be received.
    pub(crate) fn close(&mut self) {
        self.receiver.close();
    }
}

impl Drop for ChannelReceiver {
    fn drop(&mut self) {
        // Whatever is still queued will never be read: count it as consumed now. After
        // `close`, the session's sends fail and count themselves.
        self.receiver.close();
        let mut unread = 0usize;
        while let Ok(msg) = self.receiver.try_recv() {
            if let ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. } = &msg {
                unread = unread.saturating_add(data.len());
            }
        }
        self.window.consume(unread);
    }
}

/// A new channel queue.
pub(crate) fn channel_queue() -> (ChannelSender, ChannelReceiver) {
    let (sender, receiver) = unbounded_channel();
    let window = Arc::new(ReceiveWindow::default());
    (
        ChannelSender {
            sender,
            window: Arc::clone(&window),
        },
        ChannelReceiver { receiver, window },
    )
}

/// The session's end of its channels' wake-ups: the ids of channels whose application
/// consumed enough to re-open their window.
#[derive(Debug)]
pub(crate) struct ConsumedChannels {
    wake: UnboundedSender<ChannelId>,
    receiver: UnboundedReceiver<ChannelId>,
}

impl Default for ConsumedChannels {
    fn default() -> Self {
        let (wake, receiver) = unbounded_channel();
        Self { wake, receiver }
    }
}

impl ConsumedChannels {
    /// Starts flow control for a channel registered as `id`, with the window `window`
    /// we announced and our maximum packet size.
    pub(crate) fn register(&self, window: &ReceiveWindow, id: ChannelId, size: u32, packet: u32) {
        window.register(id, self.wake.clone(), size, packet);
    }

    /// The next channel to announce; never `None` (the session holds a sender).
    pub(crate) async fn next(&mut self) -> Option<ChannelId> {
        self.receiver.recv().await
    }

    /// Another channel to announce, if one is waiting.
    pub(crate) fn try_next(&mut self) -> Option<ChannelId> {
        self.receiver.try_recv().ok()
    }
}
