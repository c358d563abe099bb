//! Email: the `smtp` relation and the email options turned into what parse-server's mail
//! adapter needs. Read before anything is installed or touched: a provider whose data
//! cannot be used yet stops the reconcile, and whatever serves keeps serving.

use super::endpoints::SMTP_ENDPOINT;
use super::status::{Blocked, Invalid, Waiting};
use super::{blocked, waiting, Charm, Step};
use crate::config::CharmConfig;
use crate::relations::smtp::{sender_address, Answer, ProviderBag};
use crate::workload::render::EmailSpec;

impl Charm<'_> {
    /// The mail adapter's settings, or `None` without an smtp relation (parse-server then
    /// has no email adapter: verification and reset mails are unavailable).
    pub(super) fn email(&self, config: &CharmConfig) -> Step<Option<EmailSpec>> {
        let ids = self.live_relations(SMTP_ENDPOINT)?;
        let Some(id) = ids.first() else {
            if config.verify_user_emails {
                return blocked(invalid(
                    "verify-user-emails",
                    "needs an smtp relation (juju integrate parse-server smtp-integrator)",
                ));
            }
            return Ok(None);
        };
        let Some(remote_app) = self.remote_app(id)? else {
            return waiting(Waiting::SmtpShare {
                what: "its settings (no unit has joined)".into(),
            });
        };
        let provider = ProviderBag::from_bag(&self.tools.relation_get_app(id, &remote_app)?);
        let secret = self.provider_secret(SMTP_ENDPOINT, provider.password_id.as_deref())?;
        let server = match provider.server(secret.as_ref()) {
            Answer::Ready(server) => server,
            Answer::Incomplete(fields) => {
                return waiting(Waiting::SmtpShare {
                    what: fields.join(", "),
                })
            }
            Answer::Unusable(why) => {
                return waiting(Waiting::ProviderData {
                    endpoint: SMTP_ENDPOINT.into(),
                    why,
                })
            }
        };
        // The operator's sender, else the provider's, else one in the provider's domain.
        let from = match (&config.email_from, &server.sender, &server.domain) {
            (Some(from), _, _) => from.clone(),
            (None, Some(sender), _) if sender_address(sender).is_ok() => sender.clone(),
            (None, _, Some(domain)) => format!("noreply@{domain}"),
            _ => {
                return blocked(invalid(
                    "email-from",
                    "must be set: the smtp relation gives no sender or domain",
                ))
            }
        };
        Ok(Some(EmailSpec {
            server,
            from,
            app_name: config.app_name.clone(),
            verify_user_emails: config.verify_user_emails,
        }))
    }
}

fn invalid(option: &str, reason: &str) -> Blocked {
    Blocked::InvalidConfig(vec![Invalid::new(option, reason)])
}
