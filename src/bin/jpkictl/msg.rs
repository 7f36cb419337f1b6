//! The message catalogue: every human-readable text of jpkictl in English and Japanese.
//! Placeholders are `{0}`, `{1}`, … Machine output (`--json`) and D-Bus error names are never
//! translated.

/// Language of the human output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Ja,
}

impl Lang {
    /// From the locale: the first of LC_ALL, LC_MESSAGES, LANG that is set and not empty;
    /// Japanese when it starts with `ja`.
    pub fn from_env() -> Lang {
        let value = ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|k| std::env::var(k).ok())
            .find(|v| !v.is_empty())
            .unwrap_or_default();
        if value.starts_with("ja") {
            Lang::Ja
        } else {
            Lang::En
        }
    }
}

macro_rules! catalogue {
    ($($id:ident => $en:literal, $ja:literal;)*) => {
        /// A message of the catalogue. (Some are used only with or without feature `pcsc`.)
        #[allow(dead_code)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum M { $($id,)* }

        impl M {
            /// Every message, for the catalogue's own tests.
            #[cfg(test)]
            const ALL: &[M] = &[$(M::$id,)*];

            /// The template in `lang`.
            pub fn text(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $((M::$id, Lang::En) => $en, (M::$id, Lang::Ja) => $ja,)*
                }
            }
        }
    };
}

/// The message `m` in `lang` with `{i}` replaced by `args[i]`.
pub fn f(lang: Lang, m: M, args: &[&str]) -> String {
    let mut s = m.text(lang).to_owned();
    for (i, a) in args.iter().enumerate() {
        s = s.replace(&format!("{{{i}}}"), a);
    }
    s
}

/// Why there is no revocation answer, in words a technician acts on.
pub fn revocation_detail_meaning(detail: jpkid::api::RevocationDetail) -> M {
    use jpkid::api::RevocationDetail as D;
    match detail {
        D::Off => M::DetailOff,
        D::CrlMissing => M::DetailCrlMissing,
        D::CrlStale => M::DetailCrlStale,
        D::OcspUnreachable => M::DetailOcspUnreachable,
        D::OcspError => M::DetailOcspError,
        D::OcspUnknown => M::DetailOcspUnknown,
    }
}

/// What a verification status means, for the person at the counter.
pub fn status_meaning(status: &str) -> Option<M> {
    Some(match status {
        "valid" => M::StatusValid,
        "expired" => M::StatusExpired,
        "not-yet-valid" => M::StatusNotYetValid,
        "revoked" => M::StatusRevoked,
        "untrusted" => M::StatusUntrusted,
        "bad-signature" => M::StatusBadSignature,
        "wrong-purpose" => M::StatusWrongPurpose,
        "malformed" => M::StatusMalformed,
        "revocation-unknown" => M::StatusRevocationUnknown,
        _ => return None,
    })
}

catalogue! {
    // Why no revocation answer (`revocation-detail`).
    DetailOff => "revocation checking is off (revocation.mode = \"off\")",
        "失効確認は無効です (revocation.mode = \"off\")";
    DetailCrlMissing => "no CRL for this certificate's issuer: import the current one with `jpkictl crl import FILE`",
        "この証明書の発行者の CRL がありません。`jpkictl crl import ファイル` で最新の CRL を取り込んでください";
    DetailCrlStale => "the CRL is out of date (past its nextUpdate): import the current one with `jpkictl crl import FILE`",
        "CRL が古くなっています (次回更新日を過ぎています)。`jpkictl crl import ファイル` で最新の CRL を取り込んでください";
    DetailOcspUnreachable => "the OCSP responder could not be reached in time: check the network and revocation.ocsp_url",
        "OCSP レスポンダに時間内に接続できませんでした。ネットワークと revocation.ocsp_url を確認してください";
    DetailOcspError => "the OCSP responder's answer was not acceptable (signature, signer, nonce or age): `journalctl -u jpkid` has the cause",
        "OCSP レスポンダの応答を受け付けられませんでした (署名・署名者・ナンス・時刻)。原因は `journalctl -u jpkid` にあります";
    DetailOcspUnknown => "the OCSP responder does not know this certificate",
        "OCSP レスポンダはこの証明書を知りません";
    RevocationDetailLabel => "no revocation answer", "失効情報なし";
    HintAuditKey => "the audit key is the daemon's (created at its first start); read it as root, or name it with --key FILE",
        "監査キーはデーモンのものです (初回起動時に作成)。root で実行するか、--key ファイル で指定してください";

    // General.
    HintLabel => "what to do", "対処";
    Yes => "yes", "はい";
    No => "no", "いいえ";
    DigestLength => "a {0} digest has {1} bytes, --digest has {2}",
        "{0} のダイジェストは {1} バイトですが、--digest は {2} バイトです";
    DigestOrFile => "give --digest HEX or --file FILE", "--digest HEX か --file FILE を指定してください";
    NoTerminal => "no terminal to ask for the PIN ({0}); pass it as one line on stdin with --pin-stdin",
        "暗証番号を尋ねる端末がありません ({0})。--pin-stdin を付けて標準入力から1行で渡してください";
    PromptSignPassword => "Signing password (6-16 characters A-Z 0-9)", "署名用パスワード (英大文字・数字 6〜16文字)";
    PromptAuthPin => "Authentication PIN (4 digits)", "利用者証明用暗証番号 (数字4桁)";
    WrittenTo => "written to {0}", "{0} に書き出しました";

    // Hints for daemon errors.
    HintBus => "the {0} bus cannot be reached: is dbus running? With --bus, check the address",
        "{0} バスに接続できません。dbus が動いているか、--bus のアドレスを確認してください";
    HintNoAnswer => "jpkid stopped or did not answer during the call: `systemctl status jpkid` and `journalctl -u jpkid` show why; check the card's tries left with `jpkictl pins` before repeating a PIN operation",
        "処理中に jpkid が停止したか、応答しませんでした。`systemctl status jpkid` と `journalctl -u jpkid` で原因を確認し、暗証番号を使う操作をやり直す前に `jpkictl pins` で残り回数を確認してください";
    HintNotRunning => "jpkid is not running: `systemctl status jpkid` and `journalctl -u jpkid` show why; start it with `systemctl start jpkid`",
        "jpkid が動いていません。`systemctl status jpkid` と `journalctl -u jpkid` で原因を確認し、`systemctl start jpkid` で起動してください";
    HintNotAuthorized => "this user may not use jpkid: add it to group jpki (`usermod -aG jpki USER`) and log in again",
        "このユーザーには jpkid の利用権限がありません。グループ jpki に追加し (`usermod -aG jpki ユーザー名`)、ログインし直してください";
    HintNoCard => "no card in the reader: insert the My Number Card (chip side as the reader shows) and try again",
        "カードがありません。マイナンバーカードを (IC チップの向きに注意して) 差し込み、もう一度お試しください";
    HintNotJpki => "this is not a My Number Card (or its JPKI application is missing): check the card",
        "マイナンバーカードではありません (または JPKI が入っていません)。カードを確認してください";
    HintCardRemoved => "the card was taken out during the operation: insert it again, check the tries left with `jpkictl pins` (a removal during PIN verification may have used one), then repeat",
        "処理中にカードが抜かれました。差し直し、`jpkictl pins` で残り回数を確認してから (暗証番号の照合中に抜かれた場合は 1 回分減っていることがあります) やり直してください";
    HintReaderBusy => "another operation is running on this reader: wait a moment and try again",
        "このリーダーは別の処理中です。少し待ってからやり直してください";
    HintReaderGone => "the reader was disconnected: reconnect it (`jpkictl readers` lists the readers)",
        "リーダーが外れました。接続し直してください (`jpkictl readers` で一覧できます)";
    HintClaimed => "another application has claimed this reader (see Claimant in `jpkictl readers`): finish or close it",
        "別のアプリケーションがこのリーダーを使用中です (`jpkictl readers` の使用者)。そちらを終了してください";
    HintPinIncorrect => "wrong PIN: {0} tries left. Ask the holder to check it before trying again; at 0 the PIN is blocked and must be reset at the municipal office",
        "暗証番号が違います。残り {0} 回です。再入力の前に本人に確認してください。0 回になるとロックされ、市区町村の窓口で再設定が必要です";
    HintPinBlocked => "the PIN is blocked: the holder must have it reset at the municipal office (市区町村窓口)",
        "暗証番号がロックされています。本人が市区町村の窓口で再設定する必要があります";
    HintPinGuard => "refused without trying: only {0} tries are left, below the guard (pin_guard.min_remaining). If the holder is sure of the PIN, repeat with --allow-last-try",
        "残り回数が {0} 回しかないため、照合せずに止めました (pin_guard.min_remaining)。本人が暗証番号に確信がある場合のみ --allow-last-try を付けてやり直してください";
    HintPinFormat => "the signing password is 6-16 characters A-Z and 0-9; the other PINs are 4 digits. The card was not asked",
        "署名用パスワードは英大文字と数字の 6〜16 文字、その他の暗証番号は数字4桁です。カードには送っていません";
    HintDate => "{0}: dates are written YYYY-MM-DD and must exist in the calendar (there is no 30 February)",
        "{0}: 日付は YYYY-MM-DD の形式で、実在する日を指定してください (2月30日などはありません)";
    HintInvalidArgument => "check the command's arguments (`jpkictl help`)", "引数を確認してください (`jpkictl help`)";
    HintCertificateMissing => "the card has no such certificate (for example no signing certificate for holders under 15)",
        "この証明書はカードにありません (15歳未満には署名用電子証明書がありません など)";
    HintUnsupported => "this card or token is not supported for this operation", "このカード・端末ではこの操作はできません";
    HintTimeout => "the card did not answer in time: take it out, clean the contacts, insert it again",
        "カードが応答しません。抜いて接点を拭き、差し直してください";
    HintCardError => "the card refused the command: note the message (command and status word) for support",
        "カードがコマンドを拒否しました。メッセージ (コマンドとステータス) を控えてサポートに連絡してください";
    HintKeyMismatch => "the card cannot prove it holds the key of its certificate: it may be forged; do not accept it and ask the holder to contact the municipality",
        "カードが証明書の鍵を持っていることを証明できません。偽造の可能性があります。受け付けず、市区町村の窓口への相談を案内してください";
    HintInternal => "an internal error: `journalctl -u jpkid` has the details",
        "内部エラーです。`journalctl -u jpkid` に詳細があります";

    // Configuration, roots, CRL.
    HintConfig => "fix the file: every key is optional, unknown keys are errors (see DESIGN §8 / README)",
        "設定ファイルを直してください。キーはすべて省略可能で、不明なキーはエラーになります";
    HintRoots => "put the J-LIS root certificates (PEM or DER, one per file) into {0}; production roots must match the pinned fingerprints",
        "{0} に J-LIS のルート証明書 (PEM か DER、1ファイル1枚) を置いてください。本番では固定された指紋と一致する必要があります";
    HintRootRejected => "remove this file or replace it with the published J-LIS root", "このファイルを削除するか、公開されている J-LIS ルート証明書に置き換えてください";
    CrlDirMissing => "CRL directory {0} does not exist", "CRL ディレクトリ {0} がありません";
    HintCrlDir => "create {0} (`systemd-tmpfiles --create /usr/lib/tmpfiles.d/jpkid.conf`, or install the package) or set revocation.crl_dir",
        "{0} を作成するか (`systemd-tmpfiles --create /usr/lib/tmpfiles.d/jpkid.conf`)、revocation.crl_dir を設定してください";
    HintCrlImport => "use the CRL file (DER) published for the configured hierarchy; its issuer must be one of the trust roots",
        "設定した階層向けに公開された CRL (DER) を使ってください。発行者がトラストアンカーのいずれかである必要があります";
    HintCrlPermission => "no permission to write {0}: run the import as root (`sudo jpkictl crl import FILE`)",
        "{0} に書き込む権限がありません。root で実行してください (`sudo jpkictl crl import FILE`)";
    HintCrlOlder => "the installed CRL of this issuer is newer: nothing to do (use the newest CRL)",
        "この発行者の取り込み済み CRL の方が新しいため、何もしていません (最新の CRL を使ってください)";
    HintCrlPartitioned => "this file is one part of its issuer's CRL (a partitioned CRL: its issuingDistributionPoint limits the scope); jpkid imports only a complete CRL, which tells of every serial whether it is revoked: use the issuer's complete CRL file",
        "このファイルは発行者の CRL の一部です (分割 CRL: issuingDistributionPoint で範囲が限られています)。jpkid はすべてのシリアル番号について失効の有無が分かる完全な CRL だけを取り込みます。発行者の完全な CRL ファイルを使ってください";
    HintCrlTruncated => "the file ends before the CRL it begins (an interrupted download or a full disk?): fetch it again and compare its size with the published one",
        "ファイルが CRL の途中で終わっています (ダウンロードの中断やディスクの空き不足など)。もう一度取得し、公開されているサイズと比べてください";
    HintCrlUnsafeDir => "make {0} a plain directory that only root can write (`chown root:root {0}; chmod 0755 {0}`, as systemd/tmpfiles.d/jpkid.conf creates it): a user who can write it could make root's import overwrite any file",
        "{0} を root だけが書き込める通常のディレクトリにしてください (`chown root:root {0}; chmod 0755 {0}`、systemd/tmpfiles.d/jpkid.conf と同じ)。他のユーザーが書き込めると、root による取り込みで任意のファイルを上書きさせられるおそれがあります";
    CrlImported => "CRL imported: {0}", "CRL を取り込みました: {0}";
    CrlDir => "CRL directory {0}", "CRL ディレクトリ {0}";
    CrlNone => "no CRL index installed", "CRL インデックスがありません";
    IssuerKeyId => "issuer key id", "発行者鍵ID";
    Entries => "entries", "件数";
    Stale => "stale", "期限切れ";
    HintStale => "the CRL is past its nextUpdate: import the current CRL (`jpkictl crl import FILE`)",
        "CRL の次回更新日時を過ぎています。最新の CRL を取り込んでください (`jpkictl crl import FILE`)";

    // Readers, status, pins, certificates.
    ReadersTitle => "Readers:", "リーダー:";
    NoReaders => "no reader", "リーダーがありません";
    HintNoReaders => "connect a CCID (PC/SC) reader and check `pcsc_scan`; the Sony RC-S380 is not a PC/SC reader on Linux (the RC-S300 is), and many contactless-only readers are unsupported",
        "CCID (PC/SC) 対応リーダーを接続し `pcsc_scan` で確認してください。Linux では Sony RC-S380 は PC/SC リーダーとして使えません (RC-S300 は使えます)。非接触専用リーダーの多くは非対応です";
    NoSuchReader => "there is no reader {0} (readers: {1})", "リーダー {0} はありません (リーダー: {1})";
    NoReadyReader => "no reader has a card ready", "カードが準備できたリーダーがありません";
    AmbiguousReader => "several readers have a card ({0}): choose one with --reader N",
        "複数のリーダーにカードがあります ({0})。--reader N で選んでください";
    State => "state", "状態";
    CardKind => "card", "カード種別";
    Insertions => "insertions", "挿入回数";
    Claimant => "claimed by", "使用者";
    Bus => "bus", "バス";
    TrustHierarchy => "trust hierarchy", "トラスト階層";
    TestHierarchyWarning => "TEST roots are trusted: not for production counters", "テスト用ルートを信頼しています (本番の窓口では使用しないでください)";
    SignPassword => "signing password", "署名用パスワード";
    AuthPin => "authentication PIN", "利用者証明用暗証番号";
    TextPin => "text PIN", "券面事項入力補助用暗証番号";
    CodeB => "照合番号B (visual AP)", "照合番号B (券面事項確認AP)";
    TriesLeft => "{0} tries left", "残り {0} 回";
    Blocked => "blocked: reset at the municipal office", "ロック中: 市区町村の窓口で再設定";
    Certificate => "Certificate", "証明書";
    Subject => "subject", "主体者";
    Issuer => "issuer", "発行者";
    Serial => "serial", "シリアル番号";
    NotBefore => "not before", "有効期間開始";
    NotAfter => "not after", "有効期間満了";
    NotACertificate => "{0} is not a certificate: {1}", "{0} は証明書ではありません: {1}";

    // Verification.
    VerifyResult => "Verification", "検証結果";
    NotValid => "the certificate is not valid: {0}", "証明書は有効ではありません: {0}";
    StatusValid => "valid: chain, validity period and revocation check passed", "有効: 証明書チェーン・有効期間・失効確認に問題ありません";
    StatusExpired => "expired: the certificate lapsed by expiry (not revoked); the holder renews it at the municipal office",
        "有効期間満了: 有効期間の満了によるもので、失効 (取消) ではありません。市区町村窓口で更新してください";
    StatusNotYetValid => "not yet valid: check the clock of this machine", "有効期間開始前です。この端末の時計を確認してください";
    StatusRevoked => "revoked for a reason other than expiry (see revocation-reason)", "期限切れ以外の理由で失効しています (revocation-reason を参照)";
    StatusUntrusted => "no configured trust root issued this certificate", "設定されたルート証明書から発行された証明書ではありません";
    StatusBadSignature => "the certificate's signature does not verify", "証明書の署名が検証できません";
    StatusWrongPurpose => "the certificate is not for this purpose (sign/auth, or a smartphone certificate)", "用途が違う証明書です (署名用/利用者証明用、またはスマートフォン用)";
    StatusMalformed => "the certificate cannot be read", "証明書を読み取れません";
    StatusRevocationUnknown => "revocation could not be checked: import a current CRL or check OCSP", "失効確認ができません。最新の CRL を取り込むか OCSP を確認してください";

    // Counter flows: link, consent, verify-consent, match.
    PromptTextPin => "Text PIN (4 digits)", "券面事項入力補助用暗証番号 (数字4桁)";
    NoSuchSignReader => "there is no reader {0} for --sign-reader (readers: {1})",
        "--sign-reader のリーダー {0} はありません (リーダー: {1})";
    LinkDone => "Link: the card in reader {0} proved it holds the key of its signing certificate",
        "マイナポータル連携: リーダー {0} のカードが署名用電子証明書の秘密鍵を持つことを確認しました";
    IssueNumber => "issue number", "発行番号";
    CertificateStatus => "certificate", "証明書の状態";
    RevocationReason => "revocation reason", "失効理由";
    RevokedAt => "revoked at", "失効日時";
    ConsentSigned => "Consent signed on the card in reader {0}: {1}", "リーダー {0} のカードで同意に署名しました: {1}";
    WithdrawalSigned => "Withdrawal of the consent signed on the card in reader {0}: {1}",
        "リーダー {0} のカードで同意の撤回に署名しました: {1}";
    ConsentCertNotValid => "the signing certificate is not valid ({0}): this consent cannot be used",
        "署名用電子証明書が有効ではありません ({0})。この同意は使用できません";
    Document => "document", "署名した文書";
    SignedAt => "signed at", "署名日時";
    Reference => "reference", "参照番号";
    Items => "items", "対象事項";
    Kind => "kind", "種別";
    KindConsent => "consent", "同意";
    KindWithdrawal => "withdrawal", "同意の撤回";
    ItemAddress => "address", "住所";
    ItemName => "name", "氏名";
    ItemBirthDate => "birth date", "生年月日";
    ItemSex => "sex", "性別";
    ListSeparator => ", ", "、";
    ReasonSeparator => "; ", "、";
    ConsentCheckTitle => "Consent check: signature {0}", "同意書の検証: 署名 {0}";
    SignatureValid => "the signature verifies over the document with the signer's certificate",
        "署名は署名者の証明書で文書に対して正しく検証できました";
    SignatureInvalid => "the signature does not verify: the document or the signature was changed, or another key signed; what it says cannot be trusted",
        "署名を検証できません。文書か署名が改変されたか、別の鍵で署名されています。記載内容は信頼できません";
    StatusNow => "certificate now", "証明書 (現在)";
    StatusAtSigning => "certificate at signing", "証明書 (署名時)";
    LapseNote => "a lapse of the certificate after the signing does not end the consent itself (001 §4(2)); `jpkictl consent-status` tells whether updates still flow",
        "署名後に証明書が失効しても同意自体は失効しません (001 §4(2))。変更が反映されるかは `jpkictl consent-status` で確認してください";
    ConsentNotVerified => "the consent does not verify: {0}", "同意書の検証に合格しません: {0}";
    ReasonSignatureInvalid => "signature invalid", "署名が無効";
    ReasonStatusNow => "the signer's certificate is {0} now", "署名者の証明書が現在 {0}";
    ReasonStatusAtSigning => "the signer's certificate was {0} at signing", "署名時の署名者の証明書が {0}";
    MatchTitle => "Attribute match: the card in reader {0} against its signing certificate",
        "基本4情報の照合: リーダー {0} のカードの券面事項と署名用電子証明書";
    MatchTitleAcross => "Attribute match: the card in reader {0} against the signing certificate in reader {1}",
        "基本4情報の照合: リーダー {0} のカードの券面事項とリーダー {1} の署名用電子証明書";
    Matches => "matches", "一致";
    DoesNotMatch => "does not match", "不一致";
    Integrity => "integrity", "真正性";
    IntegrityVerified => "verified: the data is what J-LIS wrote (signed under a configured card CA key)",
        "確認済み: J-LIS が書き込んだデータです (設定済みのカード CA 鍵で署名を確認)";
    IntegrityMismatch => "mismatch: a digest or a signature is wrong, the data is not what J-LIS wrote",
        "不一致: ハッシュ値か署名が正しくなく、J-LIS が書き込んだデータではありません";
    IntegrityUnverifiable => "unverifiable: consistent, but under no configured J-LIS card CA key (a forgery could carry its own); check trust.card_ca_dir",
        "確認不能: 矛盾はありませんが、設定済みの J-LIS カード CA 鍵のもとにありません (偽造カードが独自に作ることもできます)。trust.card_ca_dir を確認してください";
    MatchAccepted => "accepted: all four match, integrity verified, certificate valid",
        "受付可: 4情報すべて一致、真正性確認済み、証明書は有効です";
    MatchRejected => "not accepted: {0}", "受付不可: {0}";
    ReasonMismatch => "{0} does not match", "{0}が一致しません";
    ReasonNotAll => "the four attributes do not all match", "4情報の一部が一致しません";
    ReasonIntegrity => "integrity is {0}", "真正性が {0}";
    ReasonStatus => "the signing certificate is {0}", "署名用電子証明書が {0}";

    // authenticity (the counter's 対面確認).
    PromptCodeB => "照合番号B (14 digits: birth date YYMMDD in the Japanese era, expiry year, security code)",
        "照合番号B (数字14桁: 生年月日 (和暦 YYMMDD)、有効期限の西暦年、セキュリティコード)";
    AuthenticityTitle => "Authenticity of the card in reader {0} (the chip's face data, read with 照合番号B)",
        "リーダー {0} のカードの真正性確認 (照合番号B で読んだ券面事項)";
    CvCertificate => "CV certificate", "CV 証明書";
    CvVerified => "verified: issued under a configured J-LIS card CA key",
        "確認済み: 設定済みの J-LIS カード CA 鍵で発行されています";
    CvUntrusted => "untrusted: no configured J-LIS card CA key issued it; check trust.card_ca_dir",
        "信頼できません: 設定済みの J-LIS カード CA 鍵で発行されていません。trust.card_ca_dir を確認してください";
    CvMalformed => "malformed: not a CV certificate", "不正: CV 証明書ではありません";
    CardFace => "card face", "券面事項";
    FaceVerified => "verified: the face data is what J-LIS signed", "確認済み: J-LIS が署名したとおりの券面事項です";
    FaceMismatch => "mismatch: the face data was altered after signing, or cannot be checked",
        "不一致: 署名後に券面事項が改変されたか、検証できません";
    Challenge => "chip", "IC チップ";
    ChallengeVerified => "verified: this chip holds the key of the face data (not a copy)",
        "確認済み: この IC チップが券面事項の鍵を持っています (複製ではありません)";
    ChallengeFailed => "failed: the chip does not hold the key of the face data (copied data)",
        "失敗: IC チップが券面事項の鍵を持っていません (複製されたデータ)";
    Expiry => "expiry", "有効期限";
    ExpiryNotSigned => "as the card holds it: not covered by the face signature",
        "カード記録のとおり: 券面の署名の対象外です";
    PhotoWritten => "photo", "顔写真";
    PhotoNote => "written to {0} (JPEG 2000): compare it with the person in front of you",
        "{0} に書き出しました (JPEG 2000)。目の前の本人と見比べてください";
    AuthenticityGenuine => "genuine: a card made by J-LIS, its chip present; the staff still compare the photo with the person",
        "真正: J-LIS が発行したカードの IC チップです。顔写真と本人の照合は職員が行ってください";
    AuthenticityNotGenuine => "not genuine: {0}", "真正ではありません: {0}";
    ReasonCv => "CV certificate {0}", "CV 証明書が {0}";
    ReasonFace => "card face {0}", "券面事項が {0}";
    ReasonChallenge => "chip {0}", "IC チップ確認が {0}";

    // The rules of the terms: consent-period, consent-status, link-requirement, eligibility.
    ConsentPeriodLine => "A consent made on {0} runs from {1} to {2} (001 §4(2): ten years counted from the day after the consent date)",
        "{0} にした同意の有効期間は {1} から {2} までです (001 §4(2): 同意日の翌日から起算して10年)";
    ConsentStatusTitle => "Consent of {0}, on {1}", "{0} の同意、{1} 時点";
    TodayInJapan => "today in Japan", "本日 (日本時間)";
    Period => "period", "有効期間";
    WithinPeriod => "within the period", "期間内";
    PastPeriod => "past the period", "期間外";
    Updates => "updates", "変更の反映";
    UpdatesYes => "yes: J-LIS changes of address, name and birth date reach the licence record",
        "あり: J-LIS の住所・氏名・生年月日の変更が免許情報に反映されます";
    UpdatesNo => "no: changes do not reach the licence record", "なし: 変更は免許情報に反映されません";
    Action => "action", "対応";
    ActionNone => "nothing to do: the updates flow", "対応不要 (変更は反映されます)";
    ActionIssueCertificate => "have a new signing certificate issued at the municipal office",
        "市区町村の窓口で署名用電子証明書の発行を受けてください";
    ActionConsentAgain => "consent again, with a valid signing certificate (`jpkictl consent`)",
        "有効な署名用電子証明書で再度同意してください (`jpkictl consent`)";
    ActionNotEligible => "not eligible for the one-stop service with this holding",
        "この保有状況では住所変更ワンストップサービスの対象外です";
    ActionReportChanges => "the holder reports changes to the licence centre themselves",
        "変更は本人が免許センター等に届け出てください";
    Clause => "clause", "根拠";
    ClausePeriod => "a consent runs ten years, counted from the day after the consent date; after that, consent again",
        "同意の有効期間は同意日の翌日から起算して10年です。期間が過ぎたら再度の同意が必要です";
    ClauseOtherLapse => "a signing certificate that lapsed other than by expiry stops the updates until a new one is issued",
        "有効期間満了以外の理由で署名用電子証明書が失効すると、新しい証明書が発行されるまで変更の反映が停止します";
    ClauseExpiry => "a signing certificate that expired stops the updates until the holder consents again (a new certificate alone does not restart them)",
        "署名用電子証明書が有効期間満了で失効すると、再度同意するまで変更の反映が停止します (証明書の更新だけでは再開しません)";
    ClauseHoldingChanged => "a holding other than a マイナ免許証 alone or a マイナ経歴証明書 alone stops the updates, even within the period",
        "マイナ免許証のみ・マイナ経歴証明書のみ以外の保有状況になると、同意期間中でも変更の反映が停止します";
    ClauseOneStopHolders => "the one-stop service is only for holders of a マイナ免許証 alone or a マイナ経歴証明書 alone",
        "住所変更ワンストップサービスは、マイナ免許証のみ又はマイナ経歴証明書のみを保有する方が対象です";
    ClauseWithdrawn => "the consent was withdrawn: the holder reports changes to the licence centre",
        "同意は撤回されています。変更は本人が免許センター等に届け出ます";
    LinkRequirementTitle => "Counter submission of the signing certificate for the Mynaportal link: {0}",
        "マイナポータル連携のための署名用電子証明書の窓口提出: {0}";
    SubmissionNeeded => "needed", "必要";
    SubmissionNotNeeded => "not needed", "不要";
    SubmissionMayBeNeeded => "may be needed: the licence centre decides", "必要な場合があります (免許センター等が判断します)";
    SubmissionNotEligible => "not eligible: no Mynaportal link with this holding", "対象外: この保有状況ではマイナポータル連携はできません";
    Holding => "holding", "保有状況";
    ClauseLinkNotEligible => "the Mynaportal link needs a マイナ免許証 or a マイナ経歴証明書",
        "マイナポータル連携にはマイナ免許証又はマイナ経歴証明書が必要です";
    ClauseUnlinkedLapsed => "the link was cancelled and the licence lapsed or was revoked afterwards: the counter submission may be needed again",
        "連携の解除後に免許が失効又は取り消された場合は、窓口での提出が必要な場合があります";
    ClauseUnlinked => "re-linking after a cancellation in マイナポータル needs no counter submission",
        "マイナポータルで連携を解除した後の再連携では、窓口での提出は不要です";
    ClauseLinkedBefore => "an earlier link carries over: no new link procedure is needed",
        "以前の連携が引き継がれるため、改めて連携の手続をする必要はありません";
    ClauseOneStopStarted => "starting the one-stop service at a counter already linked the issue number",
        "窓口で住所変更ワンストップサービスの利用を開始した際に、発行番号は連携済みです";
    ClauseFirstLink => "the first step of the link: the signing certificate is submitted at the licence centre (`jpkictl link`)",
        "連携の1回目: 免許センター等の窓口で署名用電子証明書を提出します (`jpkictl link`)";
    HoldingLicenseOnly => "a plastic driving licence only", "運転免許証のみ";
    HoldingMynaLicenseOnly => "a マイナ免許証 only", "マイナ免許証のみ";
    HoldingLicenseAndMynaLicense => "a plastic licence and a マイナ免許証", "運転免許証とマイナ免許証の両方";
    HoldingHistoryOnly => "a plastic 運転経歴証明書 only", "運転経歴証明書のみ";
    HoldingMynaHistoryOnly => "a マイナ経歴証明書 only", "マイナ経歴証明書のみ";
    HoldingHistoryAndMynaHistory => "a plastic 運転経歴証明書 and a マイナ経歴証明書", "運転経歴証明書とマイナ経歴証明書の両方";
    EligibilityTitle => "Services for {0} ({1})", "{0} ({1}) で利用できるサービス";
    EligibilitySuspended => "licence suspended", "免許の効力停止中";
    ServiceMynaportalLink => "Mynaportal link", "マイナポータル連携";
    ServiceLicenseInfo => "licence information", "免許情報等の確認";
    ServiceOnlineLecture => "online renewal lecture", "オンライン更新時講習の受講";
    ServiceDomicileChange => "本籍 change online", "本籍のオンライン変更";
    ServiceAddressOneStop => "address-change one-stop service", "住所変更ワンストップサービス等";
    ServiceNotifications => "notifications", "お知らせ情報の受信";
    Available => "available", "利用可";
    NotAvailable => "not available", "利用不可";

    // Monitor.
    MonitorReady => "monitoring reader events (Ctrl-C to stop)", "リーダーのイベントを表示しています (Ctrl-C で終了)";
    MonitorLost => "the connection to the bus ended", "バスとの接続が切れました";
    ReaderAdded => "reader added", "リーダーが追加されました";
    ReaderRemoved => "reader removed", "リーダーが外されました";
    DaemonStopped => "jpkid left the bus (stopped or crashed)", "jpkid がバスから消えました (停止または異常終了)";
    DaemonStarted => "jpkid is on the bus ({0})", "jpkid がバスに接続しました ({0})";

    // check.
    CheckConfig => "configuration file", "設定ファイル";
    CheckConfigDefaults => "{0} absent: built-in defaults", "{0} がないため既定値を使用";
    CheckClock => "clock", "時計";
    HintClock => "set the clock (timedatectl set-ntp true, or check the NTP server): certificate and CRL checks depend on it",
        "時計を合わせてください (timedatectl set-ntp true または NTP サーバーを確認)。証明書と CRL の確認は時刻に依存します";
    ClockBeforeCrl => "{0} is before the thisUpdate of an installed CRL ({1})", "{0} は取り込み済み CRL の発行日時 ({1}) より前です";
    CheckRoots => "trust roots", "ルート証明書";
    CheckRootRejected => "trust root rejected", "受け付けられないルート証明書";
    RootsFound => "{0} for signing, {1} for authentication, {2}, in {3}", "署名用 {0} 枚、利用者証明用 {1} 枚、{2}、{3}";
    Pinned => "all pinned", "すべて固定指紋と一致";
    NotPinned => "NOT all pinned", "固定指紋と一致しないものがあります";
    TestUnpinned => "TEST hierarchy (unpinned)", "テスト階層 (指紋固定なし)";
    CheckCrl => "CRL", "CRL";
    CheckOcsp => "OCSP responder", "OCSP レスポンダ";
    CheckCrlStale => "CRL stale", "CRL 期限切れ";
    CrlOff => "revocation.mode = off", "revocation.mode = off";
    CrlNoneOcsp => "no CRL index in {0}; OCSP is configured", "{0} に CRL インデックスはありません (OCSP を使用)";
    HintCrlNone => "import the CRLs: `jpkictl crl import FILE` for each issuing CA", "CRL を取り込んでください: 発行 CA ごとに `jpkictl crl import FILE`";
    CrlLine => "issuer {0} ({1}), nextUpdate {2}, {3} entries", "発行者 {0} ({1})、次回更新 {2}、{3} 件";
    CheckUsb => "USB reader", "USB リーダー";
    UsbNoBus => "no USB bus visible here (container or VM)", "USB バスが見えません (コンテナまたは VM)";
    UsbNone => "no USB smart-card reader (CCID) connected", "USB の IC カードリーダー (CCID) が接続されていません";
    UsbCcid => "{0}: CCID reader", "{0}: CCID リーダー";
    UsbNotPcsc => "{0}: {1}, not a PC/SC (CCID) reader on Linux", "{0}: {1} は Linux では PC/SC (CCID) リーダーとして使えません";
    HintNotPcsc => "replace it with a CCID reader (contact type, or a contactless one such as the Sony RC-S300)",
        "CCID 対応のリーダー (接触型、または Sony RC-S300 などの非接触型) に交換してください";
    HintLibccid => "a CCID reader is on USB but pcscd lists none: install the driver (`apt install libccid`) and restart pcscd",
        "USB に CCID リーダーがありますが pcscd から見えません。ドライバーを入れて (`apt install libccid`) pcscd を再起動してください";
    CheckPcscd => "pcscd", "pcscd";
    PcscdUp => "reachable", "接続可能";
    HintPcscd => "pcscd is not running: `apt install pcscd` and `systemctl enable --now pcscd.socket`",
        "pcscd が動いていません。`apt install pcscd` の後 `systemctl enable --now pcscd.socket` を実行してください";
    HintPolkit => "pcscd refused this user (polkit): run as the jpkid user or add a polkit rule for org.debian.pcsc-lite.access_pcsc",
        "pcscd がこのユーザーを拒否しました (polkit)。jpkid ユーザーで実行するか org.debian.pcsc-lite.access_pcsc の polkit ルールを追加してください";
    SkippedAbove => "skipped (see above)", "省略 (上記参照)";
    NoPcscFeature => "jpkictl was built without PC/SC support", "PC/SC 非対応でビルドされています";
    CheckPcscReaders => "PC/SC readers", "PC/SC リーダー";
    CheckCard => "card", "カード";
    CardPresent => "{0}: card present, ATR {1}", "{0}: カードあり、ATR {1}";
    CardExclusive => " (held exclusively by a process, normally jpkid)", " (プロセスが排他使用中、通常は jpkid)";
    CardMute => "{0}: card does not answer (mute)", "{0}: カードが応答しません";
    CardAbsent => "{0}: no card", "{0}: カードなし";
    ReaderUnavailable => "{0}: reader unavailable", "{0}: リーダーが使用できません";
    CheckDaemon => "jpkid on the bus", "jpkid (D-Bus)";
    DaemonUp => "version {0}, {1} on the {2} bus", "バージョン {0}、{2} バス上の {1}";
    DaemonAbsent => "nobody owns {0} on the {1} bus", "{1} バス上に {0} の所有者がいません";
    DaemonActivatable => "not running; the {0} bus starts it on the first call (activation file for {1})",
        "起動していません。最初の呼び出しで {0} バスが起動します ({1} の起動設定あり)";
    CheckDaemonHierarchy => "jpkid's trust hierarchy", "jpkid のトラスト階層";
    HierarchyDiffers => "the daemon trusts the {0} hierarchy, this configuration says {1}", "jpkid は {0} 階層を信頼していますが、この設定ファイルは {1} です";
    HintHierarchy => "check with --config that you look at the daemon's configuration; after changing it, restart jpkid (`systemctl restart jpkid`)",
        "--config で jpkid と同じ設定ファイルを見ているか確認し、設定を変えた後は jpkid を再起動してください (`systemctl restart jpkid`)";
    ClaimedBy => ", claimed by {0} (pid {1}: {2})", "、使用者 {0} (pid {1}: {2})";
    CheckDaemonReaders => "jpkid's readers", "jpkid のリーダー";
    HintDaemonNoReaders => "the daemon sees no reader: check readers.ignore in the configuration and the PC/SC steps above",
        "jpkid からリーダーが見えません。設定の readers.ignore と上の PC/SC の結果を確認してください";
    CheckAllOk => "All checks passed.", "すべての確認に合格しました。";
    CheckSomeNg => "{0} check(s) NG: follow the remedies above.", "{0} 件が NG です。上の対処を行ってください。";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placeholders(s: &str) -> Vec<usize> {
        let mut v: Vec<usize> = (0..10)
            .filter(|i| s.contains(&format!("{{{i}}}")))
            .collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn both_languages_have_every_message_with_the_same_placeholders() {
        for m in M::ALL {
            let (en, ja) = (m.text(Lang::En), m.text(Lang::Ja));
            assert!(!en.is_empty() && !ja.is_empty(), "{m:?}");
            assert_eq!(placeholders(en), placeholders(ja), "{m:?}");
            // Placeholders are numbered from 0 without gaps.
            let p = placeholders(en);
            assert_eq!(p, (0..p.len()).collect::<Vec<_>>(), "{m:?}");
        }
    }

    #[test]
    fn arguments_fill_in() {
        assert_eq!(f(Lang::En, M::TriesLeft, &["2"]), "2 tries left");
        assert_eq!(f(Lang::Ja, M::TriesLeft, &["2"]), "残り 2 回");
    }
}
