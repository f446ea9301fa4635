//! The host answers a data-path request late (contract 0.3): meanwhile the session keeps
//! taking bytes and relaying them, through the real embedded component in wasmtime.

use ftp_tunnel::runtime::Runtime;
use ftp_tunnel::runtime::wit::{Action, DataMode};
use ftp_tunnel::settings::FtpSettings;

fn to_client(actions: &[Action]) -> String {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::ToClient(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        })
        .collect()
}

fn to_server(actions: &[Action]) -> String {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::ToServer(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn other_bytes_flow_while_a_data_path_request_is_unanswered() {
    let runtime = Runtime::new().expect("component");
    let config = FtpSettings::default()
        .session_config("127.0.0.1:40000".parse().expect("addr"), "ftp.internal");
    let mut session = runtime.start_session(&config).await.expect("session");
    session
        .from_server(b"220 ready\r\n")
        .await
        .expect("greeting");

    // The client asks for passive mode; the server's 227 makes the session ask for a data
    // path, and the reply waits for its address.
    let sent = session.from_client(b"EPSV\r\n").await.expect("EPSV");
    assert_eq!(to_server(&sent), "EPSV\r\n");
    let asked = session
        .from_server(b"229 Entering Extended Passive Mode (|||40001|)\r\n")
        .await
        .expect("229");
    let (id, request) = asked
        .iter()
        .find_map(|a| match a {
            Action::OpenDataPath((id, request)) => Some((*id, request.clone())),
            _ => None,
        })
        .expect("a data path is asked for");
    assert_eq!(request.mode, DataMode::Passive);
    assert_eq!(
        (request.target_host.as_str(), request.target_port),
        ("ftp.internal", 40001)
    );
    assert!(
        to_client(&asked).is_empty(),
        "the 229 waits for its data path"
    );

    // Unanswered: the client's next commands still reach the server, at once.
    let sent = session
        .from_client(b"NOOP\r\nTYPE I\r\n")
        .await
        .expect("more");
    assert_eq!(to_server(&sent), "NOOP\r\nTYPE I\r\n");

    // The answer comes; the rewritten reply goes out, then the replies queued behind it.
    let more = session
        .from_server(b"200 NOOP ok\r\n200 Switching to Binary mode.\r\n")
        .await
        .expect("replies");
    assert!(
        to_client(&more).is_empty(),
        "replies keep their order behind the 229"
    );
    let answered = session
        .forward_opened(id, Ok("127.0.0.1:50505".parse().expect("addr")))
        .await
        .expect("answer");
    assert_eq!(
        to_client(&answered),
        "229 Entering Extended Passive Mode (|||50505|)\r\n200 NOOP ok\r\n200 Switching to Binary mode.\r\n"
    );
    session.close().await;
}

#[tokio::test]
async fn a_bad_configuration_is_refused_not_patched_up() {
    let runtime = Runtime::new().expect("component");
    let mut config = FtpSettings::default()
        .session_config("127.0.0.1:40000".parse().expect("addr"), "ftp.internal");
    config.max_line = 100;
    assert!(runtime.start_session(&config).await.is_err());
    config.max_line = 4096;
    config.server_host = "bad\r\nhost".into();
    assert!(runtime.start_session(&config).await.is_err());
}
