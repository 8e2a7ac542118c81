//! What kibaship's command lines (`kibaverify`, `kibaship-step`) share at their edge: reading the files a user
//! names, bounded ([`input`]), and writing for people and pipes ([`terminal`]).
pub mod input;
pub mod terminal;
