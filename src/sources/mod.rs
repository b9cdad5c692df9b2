//! Identity sources, shell halves: reading a site system, applying the plan the core
//! makes of it (`homestead_core::sources`), and the leader's periodic task.
//!
//! - [`ldap`] — Users from the site's LDAP directory.

pub mod ldap;
