<?php
// A PHP integration of the E-Journal service, written as PHP integrators write one: the
// WSDL, an AuthHeader SoapHeader, and the journal handed over as raw XML with
// new SoapVar($xml, XSD_ANYXML), either as the xmlData parameter (PHP then sends the journal
// inside PostJournals without an xmlData element) or as the call's only argument (PHP then
// sends the journal alone as the SOAP body). Prints what it got as JSON.
//
//   php ejournal.php CONFIG.json
//
// CONFIG holds wsdl, version ("1.1" or "1.2"), shape ("parameter" or "whole"), username,
// password, database, system, journal (the ControlAccounts document) and message.

$config = json_decode(file_get_contents($argv[1]), true);
$client = new SoapClient($config['wsdl'], [
    'soap_version' => $config['version'] === '1.2' ? SOAP_1_2 : SOAP_1_1,
    'cache_wsdl' => WSDL_CACHE_NONE,
    'exceptions' => true,
    'trace' => true,
]);
$client->__setSoapHeaders(new SoapHeader('urn:fng-gateway:ejournal', 'AuthHeader', [
    'Username' => $config['username'],
    'Password' => $config['password'],
    'Database' => $config['database'],
]));

$out = [];
try {
    $banks = $client->GetBanks(['systemIdentifier' => $config['system']]);
    $out['banks'] = $banks->GetBanksResult->any;
    $out['isSuccess'] = $banks->isSuccess;

    $journal = new SoapVar($config['journal'], XSD_ANYXML);
    $posted = $config['shape'] === 'whole'
        ? $client->PostJournals($journal)
        : $client->PostJournals(['xmlData' => $journal]);
    $out['journal'] = $posted->PostJournalsResult->any;
    $out['request'] = $client->__getLastRequest();

    $audit = $client->PostAuditMessage(['message' => $config['message']]);
    $out['audit'] = $audit->PostAuditMessageResult->any;
} catch (SoapFault $fault) {
    $out['fault'] = [
        'string' => $fault->faultstring,
        'code' => $fault->detail->GatewayFault->code ?? null,
    ];
    $out['request'] = $client->__getLastRequest();
}
echo json_encode($out), "\n";
